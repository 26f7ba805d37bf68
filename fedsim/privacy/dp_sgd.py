"""DP-SGD on the label party's top model through Opacus (per-sample clipping + Gaussian noise).

Two uses:
- `TopModelDP` (`--defense-param top_dp_epsilon=EPS [top_dp_clip=C]`, delta from --delta): Opacus'
  `make_private_with_epsilon`; protects the labels in the top model's *weights* (for a later release of
  the model) against an outsider who does not see batch membership. It does NOT protect the cut
  gradients (use a label defence or dp_gradient for those) and is reported apart, under
  `privacy.top_model_dp`. Opacus' accountant assumes Poisson sampling; the simulator's batches are a
  seeded shuffle (fixed size), so the amplified epsilon is Opacus' approximation, and we also report the
  un-amplified epsilon (sample rate 1, replace-one sensitivity 2C: noise multiplier sigma/2, one release
  per epoch), which holds for the shuffled batches too.
- `attach_dp_sgd(..., noise_multiplier, clip)`: fixed noise, used by `dp_gradient` to privatise the top
  model's updates inside its own ledger.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch
from pydantic import Field

from fedsim.errors import check
from fedsim.params import Number, PluginParams, validate_params
from fedsim.privacy.ledger import PrivacyLedger
from fedsim.privacy.mechanisms import check_delta
from fedsim.protocol import TrainingPlan


class TopModelDPParams(PluginParams):
    """`--defense-param top_dp_*`: they combine with any defence except dp_gradient (which has its own)."""

    top_dp_epsilon: Number = Field(gt=0, description="Target epsilon of Opacus DP-SGD on the top model's weights.")
    top_dp_clip: Number = Field(1.0, gt=0, description="Per-sample gradient clip norm of that DP-SGD.")


TOP_PARAMS = tuple(TopModelDPParams.model_fields)


def _engine_call(method: str, model: torch.nn.Module, optimizer: torch.optim.Optimizer, plan: TrainingPlan,
                 rng: np.random.Generator, **kwargs: Any):
    """Run a PrivacyEngine.make_private* call without wrapping the model; returns (engine, DPOptimizer)."""
    from opacus import PrivacyEngine
    from torch.utils.data import DataLoader, TensorDataset

    # the loader only tells Opacus n and the batch size; the run's own schedule chooses the batches
    loader = DataLoader(TensorDataset(torch.arange(plan.n_train)), batch_size=plan.batch_size)
    generator = torch.Generator().manual_seed(int(rng.integers(2**62)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # secure-RNG and non-Poisson notices: both documented above
        engine = PrivacyEngine(accountant="rdp")
        _, dp_optimizer, _ = getattr(engine, method)(
            module=model, optimizer=optimizer, data_loader=loader, poisson_sampling=False,
            noise_generator=generator, wrap_model=False, **kwargs)
    return engine, dp_optimizer


def attach_dp_sgd(model: torch.nn.Module, optimizer: torch.optim.Optimizer, plan: TrainingPlan,
                  rng: np.random.Generator, noise_multiplier: float, clip: float) -> torch.optim.Optimizer:
    """Per-sample clip to `clip` and N(0, (noise_multiplier clip)^2) on the summed gradient, via Opacus."""
    _, dp_optimizer = _engine_call("make_private", model, optimizer, plan, rng,
                                   noise_multiplier=noise_multiplier, max_grad_norm=clip)
    return dp_optimizer


class TopModelDP:
    """Opacus DP-SGD on the top model to a target epsilon (see the module docstring)."""

    name = "top_dp"
    summary = "Opacus DP-SGD on the top model to a target epsilon: protects its weights, not the cut gradients."
    tasks = ("regression", "binary")
    Params = TopModelDPParams

    def __init__(self, epsilon: float, delta: float, clip: float) -> None:
        self.epsilon, self.delta, self.clip = epsilon, delta, clip
        self.engine = None
        self.optimizer: Any = None
        self.epochs = 0

    @classmethod
    def from_config(cls, delta: float | None, params: dict) -> TopModelDP:
        p = validate_params(TopModelDPParams, params, "top-model DP-SGD")
        check(delta is not None, "top-model DP-SGD (top_dp_epsilon) needs --delta DELTA (0 < delta < 1)")
        return cls(p.top_dp_epsilon, check_delta(delta), p.top_dp_clip)

    def attach(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, plan: TrainingPlan,
               rng: np.random.Generator) -> torch.optim.Optimizer:
        self.epochs = plan.epochs
        self.engine, self.optimizer = _engine_call(
            "make_private_with_epsilon", model, optimizer, plan, rng, target_epsilon=self.epsilon,
            target_delta=self.delta, epochs=plan.epochs, max_grad_norm=self.clip)
        return self.optimizer

    def report(self) -> dict[str, Any]:
        """The JSON `privacy.top_model_dp` section."""
        sigma = float(self.optimizer.noise_multiplier)
        amplified = float(self.engine.get_epsilon(self.delta))
        unamplified = PrivacyLedger().gaussian(sigma / 2, self.epochs).epsilon(self.delta)
        return {
            "epsilon": amplified, "delta": self.delta, "target_epsilon": self.epsilon,
            "noise_multiplier": sigma, "max_grad_norm": self.clip, "accountant": "opacus rdp",
            "epsilon_without_amplification": unamplified,
            "guarantee": (f"({amplified:.4g}, {self.delta:g})-label-DP for the top model's weights only, against "
                          "an outsider who does not see batch membership (Opacus RDP, Poisson-sampling "
                          f"approximation for shuffled batches); ({unamplified:.4g}, {self.delta:g}) without "
                          "amplification; the cut gradients are not covered"),
        }
