"""The ideal observer of an audit (the mechanism audited alone, with the exact distinguisher) and the number
of guesses it plans from public facts before any run.

Laws (`IdealLaw`), one canary with secret bit b:
- "gaussian": the score N(mu b, 1), mu the GDP parameter of the claim (`gdp_mu(eps, delta)`): every Gaussian
  mechanism and composition of them (dp_gradient, gaussian labels); the exact LLR is increasing in the score.
- "laplace": b + Laplace(1 / eps) (labels clipped to a range of width 1, Laplace labels).
- "rr": `steps` releases of binary randomised response at eps / steps, summed as +-1 votes (grad_perturb: one
  release per epoch; steps 1: RR at eps, the worst case of every eps-DP mechanism); k-ary canaries: k-ary RR.

Planned guesses (`planned_guesses`). Which k of the m canaries to guess on is fixed from the claim (eps,
delta), the law (the defence's family and, for per-epoch releases, the epochs), m, the confidence and the
alphabet, all public and known before the run, never from the scores: k maximises the ideal observer's expected
f-DP bound at the claim. The expectation is computed deterministically: the accuracy of the k/m most confident
fraction of the law is read off `PLAN_DRAWS` draws from a fixed seed, and the bound is averaged over the
quartiles and median of Binomial(k, accuracy). A fixed fraction was worse at most eps (the best k falls from
about 30% of the canaries at eps 1 to 10-15% at eps 4-8 for Gaussian scores). The ideal observer is then
analysed at the same k, so the efficiency compares like with like.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from scipy.special import expit
from scipy.stats import binom

from fedsim.errors import check
from fedsim.privacy.audit_bound import ranked_guesses
from fedsim.privacy.fdp import family_steps, fdp_lower_bound, gdp_mu
from fedsim.privacy.mechanisms import randomized_response

LAWS = ("gaussian", "laplace", "rr")
PLAN_SEED, PLAN_DRAWS = 20231, 200_000
PLAN_FRACTIONS = (0.02, 0.03, 0.05, 0.07, 0.1, 0.13, 0.16, 0.2, 0.25, 0.3, 0.4, 0.5, 0.65, 0.8, 1.0)
PLAN_QUANTILES = (0.25, 0.5, 0.75)


@dataclass(frozen=True)
class IdealLaw:
    """The law of one canary's release under the claim (module docstring)."""

    kind: str = "rr"
    steps: int = 1

    def __post_init__(self) -> None:
        check(self.kind in LAWS and self.steps >= 1, f"an ideal law is one of {', '.join(LAWS)} with steps >= 1, "
                                                     f"got {self.kind!r}, {self.steps}")


def family_law(family: str) -> IdealLaw:
    """The worst case of a claim's f-DP family: Gaussian scores for "gdp", s releases of RR for "rr:s", binary RR
    at eps otherwise."""
    steps = family_steps(family)
    return IdealLaw("gaussian" if family == "gdp" else "rr", steps or 1)


def declared_law(mechanism: object, epochs: int = 1) -> IdealLaw | None:
    """The law a defence declares with its class attribute `audit_law` (one of `LAWS`, or "rr_per_epoch": RR
    once per epoch), None when it declares none."""
    law = getattr(mechanism, "audit_law", None)
    if law == "rr_per_epoch":
        return IdealLaw("rr", epochs)
    return IdealLaw(law) if law in LAWS else None


def law_of(mechanism: object, family: str, epochs: int) -> IdealLaw:
    """A defence's own law (`declared_law`), else its family's worst case."""
    declared = declared_law(mechanism, epochs)
    return family_law(family) if declared is None else declared


def ideal_statistic(law: IdealLaw, epsilon: float, delta: float, bits: np.ndarray,
                    rng: np.random.Generator) -> np.ndarray:
    """One draw of the law's statistic per canary (binary bits), increasing in the evidence for bit 1: the exact
    likelihood-ratio ranking, so ranking by it is the ideal observer."""
    n = len(bits)
    if law.kind == "gaussian":
        return gdp_mu(epsilon, delta) * bits + rng.standard_normal(n)
    if law.kind == "laplace":
        return bits + rng.laplace(0.0, 1.0 / epsilon, n)
    keep = rng.random((n, law.steps)) < float(expit(epsilon / law.steps))
    sign = 2.0 * bits[:, None] - 1.0
    return np.where(keep, sign, -sign).sum(axis=1)


def ideal_guesses(law: IdealLaw, epsilon: float, delta: float, secrets: np.ndarray, classes: int,
                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One draw of the ideal observer's guesses and confidences. Binary: the ranking of `ideal_statistic`.
    k-ary: k-ary randomised response at eps, the released class is the secret with probability
    e^eps / (e^eps + k - 1), else uniform over the others (no eps-DP mechanism of a uniform k-ary secret is
    right more often); the guess is the released class, every guess equally confident, ties in a seeded order."""
    if classes == 2:
        return ranked_guesses(ideal_statistic(law, epsilon, delta, secrets, rng))
    return randomized_response(secrets, epsilon, classes, rng), rng.random(len(secrets))


@functools.lru_cache(maxsize=256)
def planned_guesses(law: IdealLaw, family: str, epsilon: float, delta: float, canaries: int, confidence: float,
                    classes: int = 2) -> int:
    """The number of guesses that maximises the ideal observer's expected f-DP bound at the claim (module
    docstring); a function of public facts only, the same for every run with the same claim."""
    rng = np.random.default_rng(PLAN_SEED)
    secrets = rng.integers(0, classes, PLAN_DRAWS)
    guess, score = ideal_guesses(law, epsilon, delta, secrets, classes, rng)
    order = np.argsort(-score, kind="stable")
    right = np.cumsum(guess[order] == secrets[order])
    best, best_bound = canaries, -1.0
    for k in sorted({max(1, round(f * canaries)) for f in PLAN_FRACTIONS}):
        top = max(1, round(k / canaries * PLAN_DRAWS))
        accuracy = right[top - 1] / top
        counts = binom.ppf(PLAN_QUANTILES, k, accuracy).astype(int)
        bound = float(np.mean([fdp_lower_bound(family, canaries, k, int(w), confidence, delta, classes)
                               for w in counts]))
        if bound > best_bound:
            best, best_bound = k, bound
    return best
