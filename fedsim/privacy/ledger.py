"""The privacy ledger of a run: which label-DP events happened, how often, and what they compose to.

Unit of privacy: one example's label; neighbouring datasets differ by *replacing* one label. Every event
is stated relative to that relation:

- `gaussian(noise_multiplier, count)`: `count` releases of a value with replace-one L2 sensitivity S plus
  N(0, (z S)^2), z = `noise_multiplier`. Privacy loss is that of a pure shift by S, so it is accounted
  exactly like Opacus' / dp-accounting's Gaussian at noise multiplier z with sampling rate 1: NO
  amplification by subsampling is ever assumed (in split learning the feature party knows the batch ids).
- `laplace(epsilon, count)`, `randomized_response(epsilon, k, count)`, `exponential(epsilon, count)`,
  `pure_release(epsilon, count)`: pure epsilon-DP releases (the last two have no dp-accounting event: their epsilon
  is added as is).

Composition. Pure events compose by basic composition (sum of epsilons, delta 0); Gaussian events are
composed exactly as Gaussian differential privacy ("gdp", the reported value), cross-checked by
dp-accounting's PLD (pessimistic; agrees to its discretisation, tested) and RDP and by Opacus' RDP and PRV
accountants. A ledger holding both kinds reports pure_sum + epsilon_gaussian(delta) at delta (basic
composition of an (e1, 0) and an (e2, delta) guarantee).

Why GDP is exact here (proof sketch; Dong, Roth & Su, "Gaussian differential privacy", JRSS B 2022). A
release of sensitivity S plus N(0, (z S)^2) has the trade-off curve G_mu of N(0, 1) against N(mu, 1) with
mu = 1/z, for every pair of neighbours (the worst case is the shift by S; Theorem 2.7). Adaptive composition
of G_mu1, ..., G_mun is G_mu with mu = sqrt(sum mu_i^2) (their Corollary 3.3: the tensor product of
Gaussian trade-offs is Gaussian), and mu-GDP is (eps, delta(eps))-DP for exactly delta(eps) =
Phi(-eps/mu + mu/2) - e^eps Phi(-eps/mu - mu/2) (Corollary 2.13), which `fedsim.privacy.fdp.gdp_epsilon`
inverts. No subsampling is involved (sample rate 1), so nothing is approximated: the reported epsilon is
the smallest any accountant can certify for these events. RDP (alpha/(2 z^2) per release, closed form at
q = 1) is looser; it was the reported accountant before, and sigma calibrated with it was larger than needed.

dp-accounting 0.6 pitfall: its PLD accountant ignores the repetition count of a
`RandomizedResponseDpEvent` (`compose(rr, 5)` reports the epsilon of one release). `dp_accounting_epsilon`
therefore composes RR events one at a time; a regression test keeps this honest.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Literal

from fedsim.errors import UserError, check
from fedsim.privacy.mechanisms import check_delta, check_epsilon

Accountant = Literal["gdp", "opacus_rdp", "opacus_prv", "rdp", "pld"]
ACCOUNTANTS: tuple[str, ...] = ("gdp", "opacus_rdp", "opacus_prv", "rdp", "pld")
CALIBRATION_MARGIN = 1e-9  # relative: calibrated noise is this much above the exact one, so rounding never exceeds


@dataclass(frozen=True)
class PrivacyEvent:
    """`count` identical releases touching every label once each."""

    mechanism: Literal["gaussian", "laplace", "randomized_response", "exponential", "pure"]
    count: int
    noise_multiplier: float | None = None  # gaussian: noise std / replace-one L2 sensitivity
    epsilon: float | None = None  # pure events
    num_classes: int | None = None  # randomized_response
    what: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None and v != ""}


def _opacus_alphas() -> list[float]:
    from opacus.accountants import RDPAccountant

    return list(RDPAccountant.DEFAULT_ALPHAS)


@dataclass
class PrivacyLedger:
    """The events of one run and their composition (see the module docstring)."""

    events: list[PrivacyEvent] = field(default_factory=list)

    # --- recording -------------------------------------------------------------------------------------

    def gaussian(self, noise_multiplier: float, count: int = 1, what: str = "") -> PrivacyLedger:
        check(math.isfinite(noise_multiplier) and noise_multiplier > 0,
              f"a Gaussian event needs a finite noise multiplier > 0, got {noise_multiplier}")
        self.events.append(PrivacyEvent("gaussian", _count(count), noise_multiplier=float(noise_multiplier),
                                        what=what))
        return self

    def laplace(self, epsilon: float, count: int = 1, what: str = "") -> PrivacyLedger:
        self.events.append(PrivacyEvent("laplace", _count(count), epsilon=check_epsilon(epsilon), what=what))
        return self

    def pure_release(self, epsilon: float, count: int = 1, what: str = "",
                     mechanism: str = "pure") -> PrivacyLedger:
        """Any other pure epsilon-DP release (no dp-accounting event: its epsilon is added as is)."""
        self.events.append(PrivacyEvent(mechanism, _count(count), epsilon=check_epsilon(epsilon),  # type: ignore[arg-type]
                                        what=what))
        return self

    def exponential(self, epsilon: float, count: int = 1, what: str = "") -> PrivacyLedger:
        return self.pure_release(epsilon, count, what, "exponential")

    def randomized_response(self, epsilon: float, num_classes: int, count: int = 1,
                            what: str = "") -> PrivacyLedger:
        check(int(num_classes) >= 2, f"randomised response needs >= 2 outputs, got {num_classes}")
        self.events.append(PrivacyEvent("randomized_response", _count(count), epsilon=check_epsilon(epsilon),
                                        num_classes=int(num_classes), what=what))
        return self

    # --- composition -----------------------------------------------------------------------------------

    @property
    def pure(self) -> bool:
        """True when every event is pure epsilon-DP (the total then holds with delta = 0)."""
        return all(e.mechanism != "gaussian" for e in self.events)

    def pure_epsilon(self) -> float:
        """Basic composition of the pure events: sum of count * epsilon."""
        return float(sum(e.count * e.epsilon for e in self.events if e.mechanism != "gaussian"))

    def gaussian_mu(self) -> float:
        """The GDP parameter of the Gaussian events composed: sqrt(sum count / z^2) (module docstring)."""
        return math.sqrt(sum((e.count / e.noise_multiplier**2 for e in self.events
                              if e.mechanism == "gaussian" and e.noise_multiplier is not None), 0.0))

    def gaussian_epsilon(self, delta: float, accountant: Accountant = "gdp") -> float:
        """Epsilon at `delta` of the Gaussian events alone, composed with sampling rate 1."""
        gaussians = [(e.noise_multiplier, e.count) for e in self.events if e.mechanism == "gaussian"]
        if not gaussians:
            return 0.0
        delta = check_delta(delta)
        if accountant == "gdp":
            from fedsim.privacy.fdp import gdp_epsilon

            return gdp_epsilon(self.gaussian_mu(), delta)
        if accountant == "opacus_rdp":
            from opacus.accountants import RDPAccountant

            acc = RDPAccountant()
            acc.history = [(z, 1.0, n) for z, n in gaussians]
            return float(acc.get_epsilon(delta))
        if accountant == "opacus_prv":
            from opacus.accountants import PRVAccountant

            acc = PRVAccountant()
            acc.history = [(z, 1.0, n) for z, n in gaussians]
            with warnings.catch_warnings():  # q = 1 takes log(0) inside PRV's domain setup; harmless
                warnings.simplefilter("ignore", RuntimeWarning)
                return float(acc.get_epsilon(delta))
        if accountant in ("rdp", "pld"):
            import dp_accounting

            acc = _dp_accountant(accountant, dp_accounting.NeighboringRelation.ADD_OR_REMOVE_ONE)
            for z, n in gaussians:
                acc.compose(dp_accounting.GaussianDpEvent(z), n)
            return float(acc.get_epsilon(delta))
        raise UserError(f"unknown accountant {accountant!r}; valid: {', '.join(ACCOUNTANTS)}")

    def epsilon(self, delta: float | None = None, accountant: Accountant = "gdp") -> float:
        """Total epsilon: pure sum, plus the Gaussian events' epsilon at `delta` (needs delta if any)."""
        if self.pure:
            return self.pure_epsilon()
        return self.pure_epsilon() + self.gaussian_epsilon(check_delta(delta), accountant)

    def dp_accounting_epsilon(self, delta: float, kind: Literal["rdp", "pld"] = "pld") -> float:
        """Cross-check with dp-accounting alone: Laplace/Gaussian under add-or-remove (a shift by the
        sensitivity gives the same numbers as replace-one), RR under replace-one, composed one at a time.
        The families (and exponential-mechanism events) are summed by basic composition."""
        import dp_accounting

        relation = dp_accounting.NeighboringRelation
        shift = _dp_accountant(kind, relation.ADD_OR_REMOVE_ONE)
        replace = _dp_accountant(kind, relation.REPLACE_ONE)
        used_shift = used_replace = False
        total = 0.0
        for e in self.events:
            if e.mechanism == "gaussian":
                shift.compose(dp_accounting.GaussianDpEvent(e.noise_multiplier), e.count)
                used_shift = True
            elif e.mechanism == "laplace":
                shift.compose(dp_accounting.LaplaceDpEvent(1.0 / e.epsilon), e.count)
                used_shift = True
            elif e.mechanism in ("exponential", "pure"):
                total += e.count * e.epsilon
            else:
                k = e.num_classes
                event = dp_accounting.RandomizedResponseDpEvent(k / (math.exp(e.epsilon) + k - 1), k)
                for _ in range(e.count):  # never compose(event, count): PLD ignores the count (0.6)
                    replace.compose(event)
                used_replace = True
        if used_shift:
            total += float(shift.get_epsilon(delta))
        if used_replace:
            total += float(replace.get_epsilon(delta))
        return total

    def summary(self, delta: float | None) -> dict[str, Any]:
        """What the JSON `details` carry: events, total, and every accountant's view of the same events."""
        out: dict[str, Any] = {"events": [e.as_dict() for e in self.events],
                               "neighbouring_relation": "replace one label",
                               "subsampling_amplification": False}
        if self.pure:
            out.update(composition="basic (sum of pure epsilons)", epsilon=self.pure_epsilon())
            return out
        out.update(composition="pure events summed; Gaussian events composed exactly as Gaussian DP, sample rate 1",
                   accountant="gdp", gaussian_mu=self.gaussian_mu(), epsilon=self.epsilon(delta),
                   cross_check={a: self.pure_epsilon() + self.gaussian_epsilon(delta, a)  # type: ignore[arg-type]
                                for a in ACCOUNTANTS})
        return out


def calibrate_gaussian(target_epsilon: float, delta: float, count: int) -> float:
    """The noise multiplier z with which `count` Gaussian releases (sample rate 1) reach `target_epsilon` at
    `delta` by the exact GDP composition (module docstring): z = sqrt(count) / mu, mu the GDP parameter whose
    curve passes through (target, delta); a relative margin of 1e-9 keeps the achieved epsilon <= the target."""
    from fedsim.privacy.fdp import MU_CEILING, gdp_mu

    target_epsilon, delta = check_epsilon(target_epsilon), check_delta(delta)
    mu = gdp_mu(target_epsilon, delta)
    check(mu < MU_CEILING, f"cannot reach epsilon {target_epsilon} at delta {delta} over {count} releases: the "
                           "noise would vanish; lower --epsilon")
    return math.sqrt(_count(count)) / mu * (1.0 + CALIBRATION_MARGIN)


def _count(count: int) -> int:
    check(int(count) == count and count >= 1, f"an event count must be an integer >= 1, got {count}")
    return int(count)


def _dp_accountant(kind: str, relation):
    from dp_accounting import pld, rdp

    if kind == "rdp":
        return rdp.RdpAccountant(orders=_opacus_alphas(), neighboring_relation=relation)
    if kind == "pld":
        return pld.PLDAccountant(relation)
    raise UserError(f"unknown dp-accounting accountant {kind!r}; valid: rdp, pld")
