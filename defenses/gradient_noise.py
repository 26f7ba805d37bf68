"""Heuristic cut-gradient defences: isotropic Gaussian / Laplace noise, max_norm, sparsification.

None has a DP bound (the noise is not calibrated to a sensitivity, or there is none): their claims say
"no formal guarantee", and attacks measure what they buy. All work on per-example gradient rows
g_i = B * (dL/dh_i) (the loss is a batch mean, and B is public to the feature party), and hand back
rows / B so the loss scale is unchanged.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch
from pydantic import Field, model_validator

from fedsim.defenses.base import Defense, heuristic_claim
from fedsim.params import Flag, Number, PluginParams
from fedsim.privacy.claims import PrivacyClaim
from fedsim.protocol import GradientContext, GradientTransform, TrainingPlan
from fedsim.registry import GRADIENT_DEFENSES


class GradientDefense(Defense, GradientTransform):
    """A gradient defence with its own seeded torch generator (drawn from the run's numpy generator)."""

    generator: torch.Generator

    def prepare(self, plan: TrainingPlan, rng: np.random.Generator) -> None:
        self.generator = torch.Generator().manual_seed(int(rng.integers(2**62)))
        self.plan = plan

    def __call__(self, grad: torch.Tensor, context: GradientContext) -> torch.Tensor:
        rows = grad * context.batch_size
        return self.transform_rows(rows, context) / context.batch_size

    def transform_rows(self, rows: torch.Tensor, context: GradientContext) -> torch.Tensor:
        raise NotImplementedError

    def noise(self, shape: torch.Size, std: float | torch.Tensor, laplace: bool = False) -> torch.Tensor:
        """N(0, std^2) or Laplace with the same standard deviation, from the defence's generator."""
        if not laplace:
            return torch.randn(shape, generator=self.generator) * std
        u = torch.rand(shape, generator=self.generator, dtype=torch.float64) - 0.5  # inverse-CDF Laplace
        sample = -torch.sign(u) * torch.log1p(-2 * u.abs())
        return (sample / np.sqrt(2.0)).float() * std  # Laplace(b) has std b*sqrt(2)


class NoiseParams(PluginParams):
    scale: Number | None = Field(None, gt=0, description="Absolute noise std per coordinate (instead of ratio).")
    ratio: Number | None = Field(None, gt=0, description="Noise std as a share of the batch's largest row norm / "
                                                          "sqrt(d); 1 when scale is not given.")

    @model_validator(mode="after")
    def _scale_or_ratio(self) -> NoiseParams:
        if self.scale is not None and self.ratio is not None:
            raise ValueError("give scale or ratio, not both")
        if self.scale is None and self.ratio is None:
            self.ratio = 1.0
        return self


class _NoiseDefense(GradientDefense):
    """Add noise to every row: std `scale` per coordinate (absolute), or `ratio * max_i |g_i| / sqrt(d)`
    (relative to the batch's largest row, Li et al.'s "iso" baseline; default ratio 1)."""

    laplace: ClassVar[bool] = False
    Params = NoiseParams

    def __init__(self, scale: float | None, ratio: float | None) -> None:
        self.scale, self.ratio = scale, ratio

    @classmethod
    def from_config(cls, task: str, epsilon: float | None, delta: float | None, params: dict) -> _NoiseDefense:
        cls.check_task(task)
        p = cls.read_params(params)
        return cls(p.scale, p.ratio)

    def transform_rows(self, rows: torch.Tensor, context: GradientContext) -> torch.Tensor:
        if self.scale is not None:
            std: float | torch.Tensor = self.scale
        else:
            std = self.ratio * rows.norm(dim=1).max() / np.sqrt(rows.shape[1])
        return rows + self.noise(rows.shape, std, self.laplace)

    def privacy(self) -> PrivacyClaim:
        what = f"scale {self.scale}" if self.scale is not None else f"ratio {self.ratio} of the batch's max row norm"
        return heuristic_claim(self.name, f"{self.name} on cut gradients ({what}) is not calibrated to a "
                                          "sensitivity", scale=self.scale, ratio=self.ratio)


@GRADIENT_DEFENSES.register("gaussian_noise")
class GaussianGradientNoise(_NoiseDefense):
    summary = "Isotropic Gaussian noise on cut gradients (heuristic, no formal guarantee)."


@GRADIENT_DEFENSES.register("laplace_noise")
class LaplaceGradientNoise(_NoiseDefense):
    summary = "Isotropic Laplace noise on cut gradients (heuristic, no formal guarantee)."
    laplace = True


@GRADIENT_DEFENSES.register("max_norm")
class MaxNorm(GradientDefense):
    """Li et al. (ICLR 2022): g_i (1 + sigma_i xi_i), sigma_i = sqrt(max(|g_max|^2/|g_i|^2 - 1, 0)),
    xi_i ~ N(0, 1), so every row's expected squared norm equals the batch's largest: norms stop telling
    positives from negatives on average; directions are kept (up to a random sign)."""

    summary = "Li et al.'s max_norm: noise so every row's expected norm is the batch's largest (heuristic)."

    @classmethod
    def from_config(cls, task: str, epsilon: float | None, delta: float | None, params: dict) -> MaxNorm:
        cls.check_task(task)
        cls.read_params(params)
        return cls()

    def transform_rows(self, rows: torch.Tensor, context: GradientContext) -> torch.Tensor:
        norms = rows.norm(dim=1, keepdim=True)
        ratio = (norms.max() / norms.clamp_min(1e-12)) ** 2
        sigma = torch.sqrt((ratio - 1).clamp_min(0))
        xi = torch.randn(norms.shape, generator=self.generator)
        return rows * (1 + sigma * xi)

    def privacy(self) -> PrivacyClaim:
        return heuristic_claim(self.name, "max_norm equalises expected gradient norms within a batch")


class SparsifyParams(PluginParams):
    fraction: Number = Field(0.9, ge=0, lt=1, description="Share of each gradient's entries set to zero.")
    error_feedback: Flag = Field(False, description="Add a sample's dropped part to its next gradient.")


@GRADIENT_DEFENSES.register("sparsify")
class Sparsify(GradientDefense):
    """Zero the `fraction` (default 0.9) smallest-magnitude entries of each outgoing gradient; with
    `error_feedback` the dropped part of a sample's row is added to that sample's next gradient (per
    party), as in deep gradient compression."""

    summary = "Zero the smallest-magnitude gradient entries, optionally with error feedback (heuristic)."
    Params = SparsifyParams

    def __init__(self, fraction: float, error_feedback: bool) -> None:
        self.fraction, self.error_feedback = fraction, error_feedback
        self.residual: dict[int, torch.Tensor] = {}

    @classmethod
    def from_config(cls, task: str, epsilon: float | None, delta: float | None, params: dict) -> Sparsify:
        cls.check_task(task)
        p = cls.read_params(params)
        return cls(p.fraction, p.error_feedback)

    def transform_rows(self, rows: torch.Tensor, context: GradientContext) -> torch.Tensor:
        if self.error_feedback:
            memory = self.residual.setdefault(context.party, torch.zeros(self.plan.n_train, rows.shape[1]))
            rows = rows + memory[context.rows]
        kept = sparsify(rows, self.fraction)
        if self.error_feedback:
            memory[context.rows] = rows - kept
        return kept

    def privacy(self) -> PrivacyClaim:
        return heuristic_claim(self.name, f"sparsification keeps the largest {1 - self.fraction:.0%} of entries",
                               fraction=self.fraction, error_feedback=self.error_feedback)


def sparsify(values: torch.Tensor, fraction: float) -> torch.Tensor:
    """Zero the `fraction` of entries with the smallest magnitude (ties broken by position)."""
    drop = int(fraction * values.numel())
    if drop == 0:
        return values.clone()
    flat = values.flatten()
    order = torch.argsort(flat.abs(), stable=True)
    out = flat.clone()
    out[order[:drop]] = 0
    return out.view_as(values)
