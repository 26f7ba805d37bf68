"""The f-DP one-run audit analysis of Mahloujifar, Melis & Chaudhuri ("Auditing f-differential privacy in one
run", ICML 2025, arXiv 2410.22235): from guesses on m canaries to a lower bound, through a trade-off curve.

Setting as in `fedsim.privacy.audit_bound` (m canaries with secret bits, r guesses, w right), but the null
hypothesis is "the mechanism is f-DP in each canary's secret" for a trade-off function f (type-II error of
the best test at type-I error alpha). Their analysis (Theorem for reconstruction games with an alphabet of k
values; k = 2 for binary canaries, k for k-ary canaries whose uniform secret is one of k public classes)
bounds what any auditor can reach under f: going down from i = w correct guesses, two sequences r_i (mass
of "right") and h_i (mass of "wrong") with

    r_w = tau w / r,  h_w = tau (r - w) / r,  tau = beta r / m,
    h_i = max(h_{i+1}, (k - 1) f(1 - r_{i+1})),   r_i = r_{i+1} + i / (r - i) (h_i - h_{i+1}),

and an f-DP mechanism can give w right guesses with probability >= beta only if r_0 + h_0 <= r / m. So the
claim f is rejected at level beta when r_0 + h_0 > r / m (`consistent` is False). Our implementation follows
the recursion as written in the paper's algorithm (and in the authors' PrivacyGuard analysis).

Families. Within a one-parameter family f_t that gets weaker as t grows, the rejected set is [0, t*), and
t* is found by bisection:
- `dp_tradeoff(eps, delta)`: the curve of (eps, delta)-DP, implied by the claim itself, so a rejection is a
  rejection of the (eps, delta) claim with no further assumption;
- `gdp_tradeoff(mu)`: mu-Gaussian DP, the exact curve of a composition of Gaussian mechanisms (Dong, Roth &
  Su 2022). For a Gaussian mechanism (dp_gradient's cut gradients, the gaussian label mechanism) the claim
  (eps, delta) is read as mu-GDP with `gdp_epsilon(mu, delta) = eps`; the mechanism is at least that private
  (its true mu is at most the claim's when the accountant is exact or looser), so rejecting that mu rejects
  the claim. The reported epsilon `gdp_epsilon(mu*, delta)` is a lower bound *within the GDP family*: sound
  for Gaussian mechanisms, no formal guarantee for others (the report then uses the (eps, delta) curve).
- `rr_composition_tradeoff(eps, s)` (family "rr:s", `rr_family(s)`): the exact curve of s binary randomised
  responses of one bit at eps / s each, as grad_perturb releases each label once per epoch. Its claim eps is
  read as s releases at eps / s; a run that released a label more often at the same total eps is more private
  (the curve of more, weaker releases lies above), so rejecting the family's eps still rejects the claim. Like
  GDP, a lower bound within the family: sound for mechanisms that are such a composition (or a
  post-processing of one), no formal guarantee for others. Binary canaries only (k-ary ones use the (eps,
  delta) curve: the pairwise curve of k-ary RR differs).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from scipy.optimize import brentq
from scipy.special import expit, ndtr, ndtri
from scipy.stats import binom

from fedsim.errors import check
from fedsim.privacy.mechanisms import epsilon_at_delta

TradeOff = Callable[[float], float]
EPSILON_CEILING = 60.0
MU_CEILING = 40.0
FAMILIES = ("dp", "gdp", "rr:STEPS")


def dp_tradeoff(epsilon: float, delta: float = 0.0) -> TradeOff:
    """The (eps, delta)-DP trade-off curve: max(0, 1 - delta - e^eps a, e^-eps (1 - delta - a))."""
    grow, shrink = math.exp(min(epsilon, 700.0)), math.exp(-epsilon)
    return lambda a: max(0.0, 1.0 - delta - grow * a, shrink * (1.0 - delta - a))


def gdp_tradeoff(mu: float) -> TradeOff:
    """The mu-GDP trade-off curve: Phi(Phi^-1(1 - a) - mu)."""
    return lambda a: float(ndtr(ndtri(min(max(1.0 - a, 0.0), 1.0)) - mu))


def rr_composition_tradeoff(epsilon: float, steps: int) -> TradeOff:
    """The exact curve of `steps` binary RR releases of one bit at eps / steps each. The votes for 1 are
    Binomial(steps, p) under bit 1 and Binomial(steps, 1 - p) under bit 0 (p = e^(eps/s) / (1 + e^(eps/s))); the
    likelihood ratio grows with the votes, so the Neyman-Pearson tests reject above a count, randomised at it:
    the curve interpolates linearly between the points (P0(votes >= c), P1(votes < c)), c = s + 1 .. 0."""
    p = float(expit(epsilon / steps))
    votes = np.arange(steps + 1)
    type_one = np.append(binom.sf(votes - 1, steps, 1.0 - p), 0.0)[::-1]  # P0(votes >= c), c = s + 1 .. 0
    type_two = np.append(binom.cdf(votes - 1, steps, p), 1.0)[::-1]  # P1(votes < c)
    return lambda a: float(np.interp(a, type_one, type_two))


def rr_family(steps: int) -> str:
    """The family of `steps` composed binary randomised responses (module docstring)."""
    check(steps >= 1, f"a randomised-response family needs steps >= 1, got {steps}")
    return f"rr:{steps}"


def family_steps(family: str) -> int | None:
    """The number of releases of an "rr:s" family, None for the other families; a one-line error for a name that
    is none of `FAMILIES`."""
    if family in ("dp", "gdp"):
        return None
    name, _, steps = family.partition(":")
    check(name == "rr" and steps.isdigit() and int(steps) >= 1,
          f"f-DP family must be one of {', '.join(FAMILIES)}, got {family!r}")
    return int(steps)


def family_name(family: str) -> str:
    """How a report names the analysis of `family`."""
    steps = family_steps(family)
    if steps is not None:
        return f"f-DP, {steps}-fold randomised-response family"
    return "f-DP, Gaussian-DP family" if family == "gdp" else "f-DP, (eps, delta)-DP curve"


def check_alphabet(family: str, k: int) -> None:
    """A one-line error unless `family` is known and the canaries' alphabet of `k` values suits it (the "rr:s"
    curve is for binary canaries only)."""
    steps = family_steps(family)
    check(k >= 2, f"canaries need an alphabet of k >= 2 values, got {k}")
    check(steps is None or k == 2, f"the f-DP family {family!r} is for binary canaries, got an alphabet of {k}")


def consistent(f: TradeOff, canaries: int, guesses: int, correct: int, level: float, k: int = 2) -> bool:
    """Whether w = `correct` right of r = `guesses` can happen with probability >= `level` under f-DP."""
    check(0 <= correct <= guesses <= canaries and guesses >= 1, f"need 0 <= correct ({correct}) <= guesses "
                                                                f"({guesses}) <= canaries ({canaries})")
    tau = level * guesses / canaries
    right, wrong = tau * correct / guesses, tau * (guesses - correct) / guesses
    for i in range(correct - 1, -1, -1):
        new_wrong = max(wrong, (k - 1) * f(1.0 - right))
        right += i / (guesses - i) * (new_wrong - wrong)
        wrong = new_wrong
    return right + wrong <= guesses / canaries


def _smallest_consistent(family: Callable[[float], TradeOff], ceiling: float, canaries: int, guesses: int,
                         correct: int, level: float, k: int = 2) -> float:
    """t*: every t < t* is rejected (0 when even t = 0 is consistent, `ceiling` when nothing below is)."""
    def ok(t: float) -> bool:
        return consistent(family(t), canaries, guesses, correct, level, k)

    if ok(0.0):
        return 0.0
    if not ok(ceiling):
        return ceiling
    low, high = 0.0, ceiling
    while high - low > 1e-4:
        mid = (low + high) / 2
        low, high = (low, mid) if ok(mid) else (mid, high)
    return low  # rejected: a valid lower bound


def gdp_delta(mu: float, epsilon: float) -> float:
    """delta(eps) of mu-GDP: Phi(-eps/mu + mu/2) - e^eps Phi(-eps/mu - mu/2)."""
    if mu <= 0:
        return 0.0
    return float(ndtr(-epsilon / mu + mu / 2) - math.exp(epsilon) * ndtr(-epsilon / mu - mu / 2))


def gdp_epsilon(mu: float, delta: float) -> float:
    """The smallest eps with mu-GDP => (eps, delta)-DP."""
    check(0 < delta < 1, f"a GDP epsilon needs 0 < delta < 1, got {delta}")
    return epsilon_at_delta(lambda e: gdp_delta(mu, e), delta)


def gdp_mu(epsilon: float, delta: float) -> float:
    """The mu whose GDP curve gives exactly (eps, delta) (the Gaussian mechanism calibrated to that claim)."""
    check(0 < delta < 1 and epsilon >= 0, f"need eps >= 0 and 0 < delta < 1, got {epsilon}, {delta}")
    if gdp_delta(MU_CEILING, epsilon) <= delta:
        return MU_CEILING
    return float(brentq(lambda mu: gdp_delta(mu, epsilon) - delta, 1e-9, MU_CEILING, xtol=1e-10))


def claim_tradeoff(family: str, epsilon: float, delta: float) -> TradeOff:
    """The curve a claim (eps, delta) implies within `family` (module docstring)."""
    steps = family_steps(family)
    if steps is not None:
        return rr_composition_tradeoff(epsilon, steps)
    return gdp_tradeoff(gdp_mu(epsilon, delta)) if family == "gdp" else dp_tradeoff(epsilon, delta)


def fdp_lower_bound(family: str, canaries: int, guesses: int, correct: int, confidence: float,
                    delta: float = 0.0, k: int = 2) -> float:
    """The empirical epsilon of the f-DP analysis: the largest epsilon (at `delta`) the family rejects, for
    canaries whose secret is one of `k` public values (k = 2: a fair bit)."""
    check_alphabet(family, k)
    level = 1.0 - confidence
    if guesses == 0:
        return 0.0
    if family != "gdp":  # eps itself parametrises the dp and rr:s curves
        return _smallest_consistent(lambda e: claim_tradeoff(family, e, delta), EPSILON_CEILING, canaries, guesses,
                                    correct, level, k)
    mu = _smallest_consistent(gdp_tradeoff, MU_CEILING, canaries, guesses, correct, level, k)
    return gdp_epsilon(mu, delta) if mu > 0 else 0.0


def rejects(family: str, epsilon: float, delta: float, canaries: int, guesses: int, correct: int,
            confidence: float, k: int = 2) -> bool:
    """Whether the f-DP analysis rejects the claim (eps, delta) read in `family`, at level 1 - confidence, for
    canaries with an alphabet of `k` values."""
    check_alphabet(family, k)
    if guesses == 0:
        return False
    return not consistent(claim_tradeoff(family, epsilon, delta), canaries, guesses, correct, 1.0 - confidence, k)


def binomial_excess(violations: int, audits: int, confidence: float) -> dict[str, float]:
    """Violations over `audits` audited cells against their binomial expectation at a correct mechanism: the
    expected count, and the one-sided p-value of seeing at least this many (small: a real defect, not chance)."""
    from scipy.stats import binom

    level = 1.0 - confidence
    return {"violations": violations, "audits": audits, "expected": audits * level,
            "p_value": float(binom.sf(violations - 1, audits, level)) if audits else 1.0}

