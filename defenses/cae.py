"""Confusional autoencoder (CoAE, Zou et al., "Defending Batch-Level Label Inference and Replacement Attacks in
Vertical Federated Learning", IEEE TBD 2022), with its discrete-gradient variant DCAE. No formal guarantee.

Before training the label party fits an encoder E and a decoder D (small MLPs on the K one-hot labels, each
ending in a softmax) with the loss

    CE(D(E(y)), y) + c * (E(y)_y - H(E(y)) / log K) + (1 - c) * CE(E(y), y),

c = `confusion` in [0, 1]: D must recover the label from the soft label E(y), while E(y) puts little mass on
the true class and is spread out (c = 1), or stays the label itself (c = 0). The label party then trains its
top model on the soft labels E(y) (so every cut gradient is computed against a confused label) and predicts
D(softmax(top(h))). With `discrete_bins` > 0 (DCAE) every cut-gradient coordinate is also rounded to one of
that many levels spread evenly over the batch's [-max |g|, max |g|]. The mapping y -> E(y) is fixed, so an
attacker with known labels can learn it back: CAE hides the class from sign-reading attacks, not from ones
that compare with known samples (experiments/grids/multiclass_attacks.toml measures both).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
from pydantic import Field
from torch import nn

from fedsim.defenses.base import Defense, heuristic_claim
from fedsim.params import Integer, Number, PluginParams
from fedsim.privacy.claims import PrivacyClaim
from fedsim.protocol import GradientContext, GradientTransform, TrainingPlan
from fedsim.registry import GRADIENT_DEFENSES


def softmax_mlp(k: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(k, 6 * k), nn.ReLU(), nn.Linear(6 * k, k), nn.Softmax(dim=1))


def train_autoencoder(k: int, confusion: float, steps: int, seed: int) -> tuple[nn.Module, nn.Module]:
    """Fit E and D on the K one-hot labels (module docstring); both frozen afterwards."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        encoder, decoder = softmax_mlp(k), softmax_mlp(k)
    eye, labels = torch.eye(k), torch.arange(k)
    optimizer = torch.optim.Adam([*encoder.parameters(), *decoder.parameters()], lr=1e-2)
    for _ in range(steps):
        soft = encoder(eye)
        recover = torch.log(decoder(soft) + 1e-12)
        entropy = -(soft * torch.log(soft + 1e-12)).sum(1).mean() / math.log(k)
        keep = soft[labels, labels]
        loss = (nn.functional.nll_loss(recover, labels) + confusion * (keep.mean() - entropy)
                + (1 - confusion) * nn.functional.nll_loss(torch.log(soft + 1e-12), labels))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    for module in (encoder, decoder):
        module.requires_grad_(False)
    return encoder, decoder


class Decoded(nn.Module):
    """The top model followed by the decoder: its outputs are the log of the decoded class probabilities."""

    def __init__(self, top: nn.Module, decoder: nn.Module) -> None:
        super().__init__()
        self.top, self.decoder = top, decoder

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return torch.log(self.decoder(torch.softmax(self.top(h), dim=1)) + 1e-12)


class CAEParams(PluginParams):
    confusion: Number = Field(0.5, ge=0, le=1, description="How far the soft labels move from the labels: the "
                                                            "strength (0: none, 1: most).")
    discrete_bins: Integer = Field(0, ge=0, description="DCAE: cut-gradient levels per coordinate (0: off, CAE).")
    steps: Integer = Field(1000, ge=1, description="Adam steps fitting the autoencoder.")


@GRADIENT_DEFENSES.register("cae")
class ConfusionalAutoencoder(Defense, GradientTransform):
    summary = "Zou et al.'s confusional autoencoder soft labels (discrete_bins > 0: DCAE) (heuristic)."
    tasks = ("multiclass",)
    Params = CAEParams

    def __init__(self, confusion: float, discrete_bins: int, steps: int) -> None:
        self.confusion, self.discrete_bins, self.steps = confusion, discrete_bins, steps

    @classmethod
    def from_config(cls, task: str, epsilon: float | None, delta: float | None,
                    params: dict) -> ConfusionalAutoencoder:
        cls.check_task(task)
        p = cls.read_params(params)
        return cls(p.confusion, p.discrete_bins, p.steps)

    def wrap_top_model(self, model: nn.Module, in_dim: int, plan: TrainingPlan,
                       rng: np.random.Generator) -> nn.Module:
        self.encoder, decoder = train_autoencoder(plan.n_classes, self.confusion, self.steps,
                                                  int(rng.integers(2**62)))
        self.soft_labels = self.encoder(torch.eye(plan.n_classes))
        return Decoded(model, decoder)

    def training_loss(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, rows: torch.Tensor,
                      loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> torch.Tensor:
        soft = self.soft_labels[targets] if targets.dim() == 1 else targets @ self.soft_labels
        return loss_fn(model.top(inputs), soft)

    def __call__(self, grad: torch.Tensor, context: GradientContext) -> torch.Tensor:
        if not self.discrete_bins:
            return grad
        bound = grad.abs().max().clamp_min(1e-30)
        if self.discrete_bins == 1:
            return torch.zeros_like(grad)
        step = 2 * bound / (self.discrete_bins - 1)
        return torch.round((grad + bound) / step) * step - bound

    def privacy(self) -> PrivacyClaim:
        what = f"confusional autoencoder soft labels (confusion {self.confusion})"
        if self.discrete_bins:
            what += f", cut gradients rounded to {self.discrete_bins} levels (DCAE)"
        return heuristic_claim(self.name, what, confusion=self.confusion, discrete_bins=self.discrete_bins)
