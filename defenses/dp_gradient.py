"""dp_gradient: per-example clipped, Gaussian-noised cut gradients, with honest accounting.

Mechanism, per step and per feature party: each example's gradient row g_i = B dL/dh_i is clipped to
L2 norm C and N(0, (sigma C)^2 I) is added; the party receives rows / B (B is public).

Why the claim holds for the whole transcript (replace-one label neighbours, adaptive composition):
1. A clipped row lies in the C-ball whatever the label, so one label moves it by at most 2C: each row
   release is a Gaussian mechanism with noise multiplier z = sigma / 2. Rows of other examples depend on
   label i only through the top model and the bottom models.
2. The top model is trained on the labels, so it must be private too: its updates use DP-SGD (Opacus
   per-sample clipping to `top_clip`, noise multiplier sigma; replace-one sensitivity 2 top_clip, so again
   z = sigma / 2). Its output normalisation (offset, scale) comes from public bounds (`label_low`,
   `label_high`) or from private quantiles (exponential mechanism, `stats_epsilon`).
3. Then every label-dependent message is a Gaussian release or post-processing of earlier releases. Per
   participation of example i (once per epoch) there are K + 1 releases touching its label: one cut
   gradient to each of the K feature parties (the bottom models feed back into the top model, so all are
   counted, not only the attacker's) and one top-model update. Over E epochs: (K + 1) E Gaussian events
   at z = sigma / 2, composed with sample rate 1 -- NO amplification by subsampling, since the feature
   party knows the batch ids. Every event is a non-subsampled Gaussian, so the composition is exactly
   mu-GDP with mu = sqrt((K + 1) E) 2 / sigma (Dong, Roth & Su; proof sketch in `fedsim.privacy.ledger`).
   Accountant: that exact GDP curve (cross-checked with dp-accounting's PLD and RDP, Opacus' RDP and PRV).

`--epsilon` is the target for the whole training: sigma is calibrated in closed form from the GDP curve
(`calibrate_gaussian`), so the claim is the target; `sigma=` gives the noise directly and the achieved epsilon
is reported.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from pydantic import Field, model_validator

from fedsim.defenses.base import ledger_claim, require_events
from fedsim.defenses.bounds import private_quantile
from fedsim.defenses.gradient_noise import GradientDefense
from fedsim.errors import check
from fedsim.params import Number, PluginParams
from fedsim.privacy.claims import PrivacyClaim
from fedsim.privacy.dp_sgd import attach_dp_sgd
from fedsim.privacy.ledger import PrivacyLedger, calibrate_gaussian
from fedsim.privacy.mechanisms import check_delta, check_epsilon
from fedsim.protocol import GradientContext, TrainingPlan
from fedsim.registry import GRADIENT_DEFENSES


def clip_rows(rows: torch.Tensor, clip: float) -> torch.Tensor:
    """Scale every row with norm > clip down to norm clip."""
    norms = rows.norm(dim=1, keepdim=True)
    return rows * torch.clamp(clip / norms.clamp_min(1e-12), max=1.0)


class DPGradientParams(PluginParams):
    clip: Number = Field(1.0, gt=0, description="L2 clip norm C of each example's cut-gradient row.")
    sigma: Number | None = Field(None, gt=0, description="Noise multiplier, instead of calibrating to --epsilon.")
    top_clip: Number = Field(1.0, gt=0, description="Per-sample clip norm of the top model's DP-SGD.")
    label_low: Number | None = Field(None, description="Public lower label bound (top-model scale, regression).")
    label_high: Number | None = Field(None, description="Public upper label bound (with label_low).")
    stats_epsilon: Number | None = Field(
        None, gt=0, description="Epsilon for a private label scale when no public range is given (regression).")

    @model_validator(mode="after")
    def _label_range(self) -> DPGradientParams:
        low, high = self.label_low, self.label_high
        if (low is None) != (high is None):
            raise ValueError("give both label_low and label_high, or neither")
        if low is not None and not low < high:
            raise ValueError(f"label range needs label_low < label_high, got {low}, {high}")
        return self


@GRADIENT_DEFENSES.register("dp_gradient")
class DPGradient(GradientDefense):
    """Clip + Gaussian noise on cut gradients and DP-SGD on the top model, one ledger (module docstring)."""

    summary = "Per-example clipped, Gaussian-noised cut gradients and DP-SGD top model: (eps, delta)-label-DP."
    privacy_family = "gdp"  # a composition of Gaussian mechanisms: its claim is read as mu-GDP (audits)
    Params = DPGradientParams
    takes_epsilon = takes_delta = True

    def __init__(self, epsilon: float | None, delta: float, clip: float, sigma: float | None, top_clip: float,
                 label_range: tuple[float, float] | None, stats_epsilon: float) -> None:
        self.target, self.delta, self.clip, self.sigma = epsilon, delta, clip, sigma
        self.top_clip, self.label_range, self.stats_epsilon = top_clip, label_range, stats_epsilon
        self.task = "regression"
        self.ledger = PrivacyLedger()
        self.report: dict[str, Any] = {}

    @classmethod
    def from_config(cls, task: str, epsilon: float | None, delta: float | None, params: dict) -> DPGradient:
        cls.check_task(task)
        p = cls.read_params(params)
        sigma, low, high, stats = p.sigma, p.label_low, p.label_high, p.stats_epsilon
        check(sigma is None or epsilon is None, "dp_gradient: give --epsilon (target) or sigma=, not both")
        check(sigma is not None or epsilon is not None, "dp_gradient needs --epsilon EPS (or sigma=NOISE)")
        if epsilon is not None:
            check_epsilon(epsilon)
        check(delta is not None, "dp_gradient needs --delta DELTA (0 < delta < 1, e.g. 1e-5)")
        needs_stats = task == "regression" and low is None
        check(not needs_stats or stats is not None,
              "dp_gradient on regression needs the top model's label scale: --defense-param label_low=A "
              "--defense-param label_high=B (a public range), or stats_epsilon=E to estimate it privately")
        check(not needs_stats or epsilon is None or stats < epsilon,
              f"dp_gradient: stats_epsilon ({stats}) must be below --epsilon ({epsilon})")
        defense = cls(epsilon, check_delta(delta), p.clip, sigma, p.top_clip, None if low is None else (low, high),
                      stats if needs_stats and stats else 0.0)
        defense.task = task
        return defense

    def prepare(self, plan: TrainingPlan, rng: np.random.Generator) -> None:
        super().prepare(plan, rng)
        count = (plan.parties + 1) * plan.epochs
        if self.sigma is None:
            self.sigma = 2.0 * calibrate_gaussian(self.target - self.stats_epsilon, self.delta, count)
        self.ledger.gaussian(self.sigma / 2, plan.parties * plan.epochs,
                             what=f"cut-gradient rows, clip {self.clip}, sensitivity 2C, to each of "
                                  f"{plan.parties} parties, once per epoch")
        self.ledger.gaussian(self.sigma / 2, plan.epochs,
                             what=f"top-model DP-SGD updates, clip {self.top_clip}, once per epoch")
        self.report.update(sigma=self.sigma, clip=self.clip, top_clip=self.top_clip,
                           participations=plan.epochs, target_epsilon=self.target)

    def target_normalization(self, targets: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """The top model's (offset, scale): public range, or private quartiles (recorded in the ledger)."""
        k = targets.shape[1]
        if self.task != "regression":
            return np.zeros(k), np.ones(k)
        if self.label_range is not None:
            low, high = self.label_range
            self.report["normalization"] = "public label range"
            return np.full(k, (low + high) / 2), np.full(k, (high - low) / 4)
        eps = self.stats_epsilon / 3
        q1, median, q3 = (private_quantile(targets[:, 0], q, eps, rng) for q in (0.25, 0.5, 0.75))
        self.ledger.exponential(eps, 3, what="top-model normalisation: private quartiles")
        scale = max(abs(q3 - q1) / 1.349, 1e-6)
        self.report["normalization"] = {"source": "private quartiles", "offset": median, "scale": scale}
        return np.full(k, median), np.full(k, scale)

    def privatize_top_model(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, plan: TrainingPlan,
                            rng: np.random.Generator) -> torch.optim.Optimizer:
        return attach_dp_sgd(model, optimizer, plan, rng, self.sigma, self.top_clip)

    def transform_rows(self, rows: torch.Tensor, context: GradientContext) -> torch.Tensor:
        clipped = clip_rows(rows, self.clip)
        return clipped + self.noise(rows.shape, self.sigma * self.clip)

    def privacy(self) -> PrivacyClaim:
        require_events(self.name, self.ledger)
        eps = self.ledger.epsilon(self.delta)
        check(math.isfinite(eps), "dp_gradient: the accountant returned a non-finite epsilon")
        return ledger_claim(
            self.name, self.ledger, self.delta,
            f"({eps:.4g}, {self.delta:g})-label-DP for the whole transcript: clipped cut gradients (C={self.clip}) "
            f"and top-model updates with noise multiplier {self.sigma:.4g}, composed over every participation "
            "with no subsampling amplification (exact Gaussian-DP composition)", **self.report)
