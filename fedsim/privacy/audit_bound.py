"""The one-run audit bound of Steinke, Nasr & Jagielski ("Privacy auditing with one (1) training run",
NeurIPS 2023, arXiv 2305.08846): from guesses on m canaries to a lower bound on epsilon.

Setting. m canaries, each with an independent secret fair bit (which of two public values its label takes).
One run of the mechanism; from its output the auditor guesses r of the bits (abstaining on the rest) and
gets w right. If the mechanism is (eps, delta)-DP in each canary's bit, then (their Theorem 5.2, with
q = e^eps / (1 + e^eps) and f(v) = P[Binomial(r, q) >= v])

    P[W >= v] <= f(v) + 2 m delta * max_{i = 1..v} (f(v - i) - f(v)) / i        (delta = 0: W <= Binomial(r, q))

for every v. The right-hand side at the observed v = w is the p-value of the hypothesis "(eps, delta)-DP";
`epsilon_lower_bound` returns the largest eps it rejects at level beta = 1 - confidence. The p-value follows
the paper's Appendix D procedure (the same formula as jax_privacy's auditing module).

Validity. The number of guesses must not be chosen after looking at which guesses were right. Guessing on
the k most confident canaries is valid when k is fixed in advance (`fixed_guesses`, the default rule) or
when several k are tried and each is tested at beta / (number of k) (`bonferroni`): by the union bound the
best of them is then still a level-beta test. Taking the best of several k at level beta each is not
valid (it rejects true claims too often), and nothing here does it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq
from scipy.special import expit
from scipy.stats import binom

from fedsim.errors import check

GUESS_FRACTION = 0.5  # default rule: guess on the most confident half of the canaries (see `fixed_guesses`)
EPSILON_CEILING = 60.0  # above this, e^eps / (1 + e^eps) is 1 in double precision: nothing larger is testable


def check_confidence(confidence: float) -> float:
    """A confidence strictly inside (0, 1), else a one-line `UserError`."""
    ok = isinstance(confidence, int | float) and not isinstance(confidence, bool) and 0 < confidence < 1
    check(ok, f"confidence must be a number with 0 < confidence < 1, got {confidence!r}")
    return float(confidence)


def p_value(canaries: int, guesses: int, correct: int, epsilon: float, delta: float = 0.0) -> float:
    """P-value of "(epsilon, delta)-DP" after `correct` right of `guesses` guesses on `canaries` canaries."""
    check(0 <= correct <= guesses <= canaries, f"need 0 <= correct ({correct}) <= guesses ({guesses}) <= "
                                               f"canaries ({canaries})")
    check(epsilon >= 0 and 0 <= delta <= 1, f"need epsilon >= 0 and 0 <= delta <= 1, got {epsilon}, {delta}")
    q = float(expit(epsilon))
    tail = float(binom.sf(correct - 1, guesses, q))  # f(w) = P[Binomial(r, q) >= w]
    if delta == 0 or correct == 0:
        return min(tail, 1.0)
    i = np.arange(1, correct + 1)
    gaps = binom.sf(correct - i - 1, guesses, q) - tail  # f(w - i) - f(w)
    return min(tail + 2 * canaries * delta * float(np.max(gaps / i)), 1.0)


def epsilon_lower_bound(canaries: int, guesses: int, correct: int, confidence: float, delta: float = 0.0) -> float:
    """The largest epsilon whose (epsilon, delta)-DP claim is rejected at level 1 - confidence (0 if none).

    The p-value grows with epsilon (a larger epsilon allows more correct guesses), so the rejected set is
    [0, eps*) and eps* is the root of p_value = beta, found by Brent's method.
    """
    beta = 1.0 - check_confidence(confidence)
    if guesses == 0 or p_value(canaries, guesses, correct, 0.0, delta) > beta:
        return 0.0
    if p_value(canaries, guesses, correct, EPSILON_CEILING, delta) <= beta:
        return EPSILON_CEILING
    return float(brentq(lambda eps: p_value(canaries, guesses, correct, eps, delta) - beta, 0.0, EPSILON_CEILING,
                        xtol=1e-9))


def fixed_guesses(canaries: int, fraction: float = GUESS_FRACTION) -> int:
    """The default number of guesses, fixed before the run: ceil(fraction * m)."""
    check(0 < fraction <= 1, f"guess fraction must be in (0, 1], got {fraction}")
    return max(1, math.ceil(fraction * canaries))


@dataclass(frozen=True)
class AuditBound:
    """The audit's outcome: the lower bound, the guesses it rests on and the k that were tried."""

    epsilon: float
    canaries: int
    guesses: int
    correct: int
    confidence: float
    delta: float
    tried: tuple[int, ...]

    def rejects(self, epsilon: float, delta: float | None = None) -> bool:
        """Whether the claim (epsilon, delta) is rejected: a direct test at each k tried, beta / len(tried) each."""
        level = (1.0 - self.confidence) / len(self.tried)
        return p_value(self.canaries, self.guesses, self.correct, epsilon, self.delta if delta is None else delta) \
            <= level


def correct_among_top(truth: np.ndarray, guess: np.ndarray, confidence: np.ndarray, k: int) -> int:
    """Right guesses among the k most confident canaries (ties broken by canary order, which is seeded and
    independent of the bits)."""
    order = np.argsort(-np.asarray(confidence, dtype=np.float64), kind="stable")[:k]
    return int(np.sum(np.asarray(truth)[order] == np.asarray(guess)[order]))


def tried_guesses(canaries: int, guesses: int | Sequence[int] | None) -> tuple[int, ...]:
    """The numbers of guesses tried, fixed in advance: `fixed_guesses(m)` by default, else the caller's one or
    several (then Bonferroni-corrected by the analyses)."""
    tried = (fixed_guesses(canaries),) if guesses is None else (guesses,) if isinstance(guesses, int) \
        else tuple(guesses)
    check(len(tried) >= 1 and all(1 <= k <= canaries for k in tried),
          f"numbers of guesses must be in 1..{canaries}, got {tried}")
    return tried


def audit_guesses(truth: np.ndarray, guess: np.ndarray, confidence: np.ndarray, level: float,
                  delta: float = 0.0, guesses: int | Sequence[int] | None = None) -> AuditBound:
    """Lower bound on epsilon from per-canary guesses (bits as 0/1) and their confidences.

    `guesses`: one k fixed in advance (default `fixed_guesses(m)`), or several k, each tested at
    (1 - level) / len(ks) (Bonferroni); the reported bound is the best corrected one.
    """
    truth, guess = np.asarray(truth), np.asarray(guess)
    m = len(truth)
    check(m >= 1 and len(guess) == m and len(confidence) == m, "one guess and one confidence per canary")
    ks = tried_guesses(m, guesses)
    corrected = 1.0 - (1.0 - check_confidence(level)) / len(ks)
    best: AuditBound | None = None
    for k in ks:
        w = correct_among_top(truth, guess, confidence, k)
        eps = epsilon_lower_bound(m, k, w, corrected, delta)
        if best is None or eps > best.epsilon:
            best = AuditBound(eps, m, k, w, level, delta, ks)
    return best


def ranked_guesses(statistic: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Guess 1 on the upper half of the ranking, 0 on the lower half; confidence = distance from the middle
    rank, so the k most confident are the k/2 highest and the k/2 lowest (ties: canary order)."""
    statistic = np.asarray(statistic, dtype=np.float64)
    m = len(statistic)
    rank = np.empty(m)
    rank[np.argsort(statistic, kind="stable")] = np.arange(m)
    return (rank >= m / 2).astype(np.int64), np.abs(rank - (m - 1) / 2)
