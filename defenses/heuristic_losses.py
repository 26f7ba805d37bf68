"""Heuristic defences that change the label party's training objective (no formal guarantee):

- `mid` (Zou et al., "Mutual Information Regularization for Vertical Federated Learning", 2023): a
  variational information bottleneck on the label party, between the concatenated embeddings and the top
  model. An encoder gives a Gaussian q(z | h) of width `bottleneck`, a sample z (its mean when predicting)
  goes through a decoder back to the top model's input, and the loss adds `lambda_mi` * KL(q(z | h) || N(0, I)),
  a variational bound on I(h; z). The cut gradient flows through the bottleneck: the larger lambda_mi, the
  less of the label it carries.
- `dcor` (Sun et al., "Label Leakage and Protection from Forward Embedding in Vertical Federated Learning",
  2022): the loss adds `lambda_dcor` * the distance correlation between the batch's concatenated embeddings
  and its one-hot labels, so the bottom models learn embeddings that say less about the label.

Both act through `GradientTransform.wrap_top_model` / `training_loss` (fedsim.protocol); neither bounds what
an attack learns, so each claim says "no formal guarantee" and the benchmarks measure it
(the grid experiments/grids/multiclass_attacks.toml).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from pydantic import Field
from torch import nn

from fedsim.defenses.base import Defense, heuristic_claim
from fedsim.params import Integer, Number, PluginParams
from fedsim.privacy.claims import PrivacyClaim
from fedsim.protocol import GradientTransform, TrainingPlan
from fedsim.registry import GRADIENT_DEFENSES


def one_hot_targets(targets: torch.Tensor, classes: int) -> torch.Tensor:
    """(B, K) label rows: class indices one-hot, soft rows as they are, binary (B, 1) as two columns."""
    if targets.dim() == 1:
        return nn.functional.one_hot(targets.long(), classes).float()
    if targets.shape[1] == 1:
        return torch.cat([1 - targets, targets], dim=1).float()
    return targets.float()


class VariationalBottleneck(nn.Module):
    """h -> q(z | h) = N(mu, sigma^2) -> sample (mean without grad mode, i.e. when predicting) -> decoder -> top."""

    def __init__(self, top: nn.Module, width: int, bottleneck: int, generator: torch.Generator) -> None:
        super().__init__()
        self.top, self.generator = top, generator
        self.encoder = nn.Sequential(nn.Linear(width, 2 * width), nn.ReLU(), nn.Linear(2 * width, 2 * bottleneck))
        self.decoder = nn.Sequential(nn.Linear(bottleneck, 2 * width), nn.ReLU(), nn.Linear(2 * width, width))
        self.kl = torch.zeros(())

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        mu, log_var = self.encoder(h).chunk(2, dim=1)
        log_var = log_var.clamp(-10, 10)
        if torch.is_grad_enabled():
            z = mu + torch.exp(0.5 * log_var) * torch.randn(mu.shape, generator=self.generator)
            self.kl = 0.5 * (mu.pow(2) + log_var.exp() - log_var - 1).sum(1).mean()
        else:
            z = mu
        return self.top(self.decoder(z))


class MIDParams(PluginParams):
    lambda_mi: Number = Field(0.1, ge=0, description="Weight of the KL (information) term: the strength.")
    bottleneck: Integer = Field(16, ge=1, description="Width of the bottleneck z.")


@GRADIENT_DEFENSES.register("mid")
class MutualInformationDefense(Defense, GradientTransform):
    summary = "Zou et al.'s MID: variational information bottleneck on the label party (heuristic)."
    tasks = ("binary", "multiclass")
    Params = MIDParams

    def __init__(self, lambda_mi: float, bottleneck: int) -> None:
        self.lambda_mi, self.bottleneck = lambda_mi, bottleneck

    @classmethod
    def from_config(cls, task: str, epsilon: float | None, delta: float | None,
                    params: dict) -> MutualInformationDefense:
        cls.check_task(task)
        p = cls.read_params(params)
        return cls(p.lambda_mi, p.bottleneck)

    def wrap_top_model(self, model: nn.Module, in_dim: int, plan: TrainingPlan,
                       rng: np.random.Generator) -> nn.Module:
        generator = torch.Generator().manual_seed(int(rng.integers(2**62)))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(rng.integers(2**62)))
            self.vib = VariationalBottleneck(model, in_dim, self.bottleneck, generator)
        return self.vib

    def training_loss(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, rows: torch.Tensor,
                      loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> torch.Tensor:
        out = model(inputs)
        return loss_fn(out, targets) + self.lambda_mi * self.vib.kl

    def privacy(self) -> PrivacyClaim:
        return heuristic_claim(self.name, f"variational information bottleneck of width {self.bottleneck}, "
                                          f"KL weight {self.lambda_mi}", lambda_mi=self.lambda_mi,
                               bottleneck=self.bottleneck)


def distance_correlation(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Sample distance correlation dCor(x, y) of two (B, .) batches (Szekely et al.), differentiable in x."""
    def centred(d: torch.Tensor) -> torch.Tensor:
        return d - d.mean(0, keepdim=True) - d.mean(1, keepdim=True) + d.mean()

    a = centred(torch.cdist(x, x))
    b = centred(torch.cdist(y, y))
    dcov2 = (a * b).mean()
    dvar2 = (a * a).mean() * (b * b).mean()
    return torch.sqrt((dcov2 / dvar2.sqrt().clamp_min(1e-12)).clamp_min(1e-12))


class DcorParams(PluginParams):
    lambda_dcor: Number = Field(1.0, ge=0, description="Weight of the distance-correlation term: the strength.")


@GRADIENT_DEFENSES.register("dcor")
class DistanceCorrelationDefense(Defense, GradientTransform):
    summary = "Sun et al.'s distance-correlation loss between embeddings and labels (heuristic)."
    tasks = ("binary", "multiclass")
    Params = DcorParams

    def __init__(self, lambda_dcor: float) -> None:
        self.lambda_dcor = lambda_dcor

    @classmethod
    def from_config(cls, task: str, epsilon: float | None, delta: float | None,
                    params: dict) -> DistanceCorrelationDefense:
        cls.check_task(task)
        return cls(cls.read_params(params).lambda_dcor)

    def training_loss(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, rows: torch.Tensor,
                      loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> torch.Tensor:
        out = model(inputs)
        labels = one_hot_targets(targets, out.shape[1] if targets.dim() == 1 else 2)
        return loss_fn(out, targets) + self.lambda_dcor * distance_correlation(inputs, labels)

    def privacy(self) -> PrivacyClaim:
        return heuristic_claim(self.name, f"distance-correlation penalty of weight {self.lambda_dcor}",
                               lambda_dcor=self.lambda_dcor)
