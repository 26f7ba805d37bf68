"""Marvell (Li et al., "Label Leakage and Protection in Two-party Split Learning", ICLR 2022), binary only.

Per batch, from the label party's targets: class means gbar1 (positives) and gbar0, their distance
G = |gbar1 - gbar0|^2 and unit direction e, mean per-coordinate variances v (positives) and u
(negatives), positive fraction p, row dimension d. Positives get N(0, Sigma1) and negatives N(0, Sigma0)
with Sigma_c = (l1c - l2c) e e^T + l2c I, where l >= 0 minimises the symmetrised KL between the two
noisy class distributions (under a Gaussian model of the gradients)
  (d-1)(l20+u)/(l21+v) + (d-1)(l21+v)/(l20+u) + (l10+u+G)/(l11+v) + (l11+v+G)/(l10+u)
subject to the power budget p(l11 + (d-1) l21) + (1-p)(l10 + (d-1) l20) <= P = strength * G.
Any detector's mean of false positive and false negative rates is then >= 1/2 - sqrt(sumKL)/4 in
that model. Solved per batch with SLSQP (4 variables). Batches with a single class are sent unchanged.
Reconstructed from the paper's description; heuristic: no formal (DP) guarantee.
"""

from __future__ import annotations

import numpy as np
import torch
from pydantic import Field
from scipy.optimize import minimize

from fedsim.defenses.base import heuristic_claim
from fedsim.defenses.gradient_noise import GradientDefense
from fedsim.params import Number, PluginParams
from fedsim.privacy.claims import PrivacyClaim
from fedsim.protocol import GradientContext
from fedsim.registry import GRADIENT_DEFENSES


def sum_kl(lam: np.ndarray, u: float, v: float, g: float, d: int) -> float:
    """The symmetrised KL objective above (up to the constant, which does not move the minimiser)."""
    l10, l20, l11, l21 = lam
    return float((d - 1) * (l20 + u) / (l21 + v) + (d - 1) * (l21 + v) / (l20 + u)
                 + (l10 + u + g) / (l11 + v) + (l11 + v + g) / (l10 + u))


def solve_marvell(u: float, v: float, g: float, p: float, d: int, power: float) -> np.ndarray:
    """(l10, l20, l11, l21) minimising sum_kl under the power budget."""
    eps = 1e-12
    u, v = max(u, eps), max(v, eps)
    weights = np.array([1 - p, (1 - p) * (d - 1), p, p * (d - 1)])
    start = np.full(4, power / max(weights.sum(), eps) / 2)
    result = minimize(sum_kl, start, args=(u, v, g, d), method="SLSQP", bounds=[(0, None)] * 4,
                      constraints=[{"type": "ineq", "fun": lambda lam: power - weights @ lam}])
    return np.clip(result.x, 0, None)


class MarvellParams(PluginParams):
    strength: Number = Field(1.0, gt=0, description="Noise power budget P as a multiple of the class-mean gap G.")


@GRADIENT_DEFENSES.register("marvell")
class Marvell(GradientDefense):
    """Optimised per-class Gaussian noise on cut gradients (module docstring); `strength` scales P."""

    summary = "Li et al.'s Marvell: per-class Gaussian noise minimising a KL bound on detection (binary)."
    tasks = ("binary",)
    Params = MarvellParams

    def __init__(self, strength: float) -> None:
        self.strength = strength

    @classmethod
    def from_config(cls, task: str, epsilon: float | None, delta: float | None, params: dict) -> Marvell:
        cls.check_task(task)
        p = cls.read_params(params)
        return cls(p.strength)

    def transform_rows(self, rows: torch.Tensor, context: GradientContext) -> torch.Tensor:
        positive = context.targets[:, 0] > 0.5
        if positive.all() or not positive.any():
            return rows
        x = rows.double()
        mean1, mean0 = x[positive].mean(0), x[~positive].mean(0)
        diff = mean1 - mean0
        g = float(diff @ diff)
        if g <= 0:
            return rows
        d = rows.shape[1]
        v = float(x[positive].var(0, unbiased=False).mean())
        u = float(x[~positive].var(0, unbiased=False).mean())
        p = float(positive.double().mean())
        l10, l20, l11, l21 = solve_marvell(u, v, g, p, d, self.strength * g)
        direction = diff / diff.norm()
        z = torch.randn(rows.shape, generator=self.generator, dtype=torch.float64)
        along = (z @ direction)[:, None] * direction
        l1 = torch.where(positive, l11, l10)[:, None].double()
        l2 = torch.where(positive, l21, l20)[:, None].double()
        noise = torch.sqrt(l2) * (z - along) + torch.sqrt(l1) * along
        return (x + noise).to(rows.dtype)

    def privacy(self) -> PrivacyClaim:
        return heuristic_claim(self.name, f"Marvell (strength {self.strength}) bounds detection error only "
                                          "under a Gaussian model of the gradients", strength=self.strength)
