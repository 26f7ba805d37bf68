"""Additive label noise for regression: Laplace and the analytic Gaussian mechanism on clipped labels.

Both randomise every training label once; the label party then trains on the noisy labels only, so the
whole transcript is post-processing and the guarantee holds for any number of epochs. Clip bounds are
public (`low`, `high`) or estimated privately with a share of the budget (`defenses.bounds`).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from pydantic import Field, model_validator

from fedsim.defenses.base import Defense, ledger_claim, require_events
from fedsim.defenses.bounds import private_bounds
from fedsim.params import Number, PluginParams
from fedsim.privacy.claims import PrivacyClaim
from fedsim.privacy.ledger import PrivacyLedger
from fedsim.privacy.mechanisms import analytic_gaussian_sigma, check_delta, check_epsilon, gaussian_noise, laplace_noise
from fedsim.protocol import LabelTransform
from fedsim.registry import LABEL_DEFENSES


class ClipParams(PluginParams):
    """Clip bounds of regression labels: public (`low`, `high`) or private (`bounds_share` of epsilon)."""

    low: Number | None = Field(None, description="Public lower clip bound of the labels (with high).")
    high: Number | None = Field(None, description="Public upper clip bound of the labels (with low).")
    bounds_share: Number | None = Field(
        None, gt=0, lt=1, description="Share of epsilon spent on private clip bounds when low/high are not given.")

    @model_validator(mode="after")
    def _one_source_of_bounds(self) -> ClipParams:
        if (self.low is None) != (self.high is None):
            raise ValueError("give both low and high clip bounds, or neither")
        if self.low is not None:
            if not self.low < self.high:
                raise ValueError(f"clip bounds need low < high, got low={self.low}, high={self.high}")
            if self.bounds_share is not None:
                raise ValueError("give public bounds (low, high) or bounds_share, not both")
        elif self.bounds_share is None:
            raise ValueError("needs clip bounds: --defense-param low=A --defense-param high=B (a public label "
                             "range), or bounds_share=F to spend a share F of epsilon on estimating them privately")
        return self


class ClippedLabelDefense(Defense, LabelTransform):
    """A regression label mechanism on labels clipped to [low, high]; bounds public or private.

    With private bounds (opt-in: `bounds_share` in (0, 1), e.g. 0.1), that share of epsilon goes to the
    bounds and the rest to the mechanism; the total is their sum (sequential composition), and the ledger records both.
    """

    tasks: ClassVar[tuple[str, ...]] = ("regression",)
    Params = ClipParams
    takes_epsilon = True

    @classmethod
    def from_config(cls, task: str, epsilon: float | None, delta: float | None, params: dict):
        cls.check_task(task)
        p = cls.read_params(params)
        return cls(check_epsilon(epsilon), check_delta(delta) if cls.takes_delta else None, p.low, p.high,
                   p.bounds_share or 0.0)

    def __init__(self, epsilon: float, delta: float | None, low: float | None, high: float | None,
                 bounds_share: float) -> None:
        self.epsilon, self.delta = epsilon, delta
        self.low, self.high = low, high
        self.bounds_share = 0.0 if low is not None else bounds_share
        self.ledger = PrivacyLedger()
        self.report: dict[str, Any] = {}

    def clip_range(self, y: np.ndarray, rng: np.random.Generator) -> tuple[float, float]:
        """The public bounds, or private ones (recorded in the ledger) spending `bounds_share` of epsilon."""
        if self.low is not None:
            self.report["bounds"] = {"low": self.low, "high": self.high, "source": "public (user-given)"}
            return self.low, self.high
        eps_bounds = self.epsilon * self.bounds_share
        low, high = private_bounds(y, eps_bounds, rng)
        self.ledger.exponential(eps_bounds, what="clip bounds: exponential-mechanism 5%/95% quantiles")
        self.report["bounds"] = {"low": low, "high": high, "source": "private (exponential mechanism)",
                                 "epsilon": eps_bounds}
        return low, high

    @property
    def mechanism_epsilon(self) -> float:
        return self.epsilon * (1.0 - self.bounds_share)

    def exact_epsilon(self) -> float | None:
        """A tighter exact epsilon than the ledger's accountant, where the mechanism has one."""
        return None

    def privacy(self) -> PrivacyClaim:
        require_events(self.name, self.ledger)
        eps = self.exact_epsilon() or self.ledger.epsilon(self.delta)
        bound = f"{eps:.4g}-label-DP" if self.ledger.pure else f"({eps:.4g}, {self.delta:g})-label-DP"
        sentence = (f"{bound} for the whole transcript: every training label is randomised once by {self.name} "
                    "and the label party uses only the randomised labels (post-processing)")
        return ledger_claim(self.name, self.ledger, self.delta, sentence, eps, **self.report)


@LABEL_DEFENSES.register("laplace")
class LaplaceLabels(ClippedLabelDefense):
    """clip(y, a, b) + Laplace((b - a) / eps): eps-DP (replace-one sensitivity b - a); unbiased inside [a, b]."""

    summary = "Labels clipped to [low, high] plus Laplace noise: eps-label-DP, unbiased inside the range."
    audit_law = "laplace"  # one canary's release is b + Laplace(1/eps) in units of the range (fedsim.audit.ideal)

    def apply(self, y: np.ndarray, task: str, rng: np.random.Generator) -> np.ndarray:
        low, high = self.clip_range(y, rng)
        eps = self.mechanism_epsilon
        scale = (high - low) / eps
        self.ledger.laplace(eps, what=f"labels clipped to [{low:.4g}, {high:.4g}] + Laplace({scale:.4g})")
        self.report["noise_scale"] = scale
        return np.clip(y, low, high) + laplace_noise(len(y), scale, rng)


@LABEL_DEFENSES.register("gaussian")
class GaussianLabels(ClippedLabelDefense):
    """clip(y, a, b) + N(0, sigma^2), sigma = analytic Gaussian for (eps, delta) at sensitivity b - a.

    The reported epsilon is the calibration target: the analytic Gaussian mechanism (Balle & Wang 2018)
    is exactly (eps, delta)-DP at that sigma (dp-accounting's PLD agrees; RDP, looser, is in the details).
    Private bounds add their pure epsilon by basic composition.
    """

    summary = "Labels clipped to [low, high] plus analytic-Gaussian noise: (eps, delta)-label-DP."
    privacy_family = "gdp"  # a composition of Gaussian mechanisms: its claim is read as mu-GDP (audits)
    audit_law = "gaussian"  # one canary's release is mu b + N(0, 1) in units of sigma (fedsim.audit.ideal)
    takes_delta = True

    def apply(self, y: np.ndarray, task: str, rng: np.random.Generator) -> np.ndarray:
        low, high = self.clip_range(y, rng)
        sigma = analytic_gaussian_sigma(self.mechanism_epsilon, self.delta, high - low)
        # recorded as a Gaussian event at noise multiplier sigma/(b - a): the ledger's accountant then
        # reports at most the calibrated epsilon (the analytic mechanism is exact, RDP is looser)
        self.ledger.gaussian(sigma / (high - low),
                             what=f"labels clipped to [{low:.4g}, {high:.4g}] + N(0, {sigma:.4g}^2)")
        self.report["noise_std"] = sigma
        return np.clip(y, low, high) + gaussian_noise(len(y), sigma, rng)

    def exact_epsilon(self) -> float | None:
        return self.epsilon if self.ledger.events else None
