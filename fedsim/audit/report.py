"""What every audit shares: the canaries' secret bits, the guessing rule, and the output object.

The guessing rule is fixed before any run: the auditor ranks the canaries by a statistic that grows with
the evidence for bit 1 (an attack's label estimate, a released count, a log-likelihood ratio) and guesses
1 on the k/2 highest and 0 on the k/2 lowest; k is `fixed_guesses(m)` unless the caller fixes another k
or tries several with a Bonferroni correction (`fedsim.privacy.audit_bound`). Ranking instead of a fixed
threshold makes the rule indifferent to a shifted or shrunk estimate, and it only looks at the output.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.special import expit

from fedsim.errors import check
from fedsim.privacy.audit_bound import AuditBound, audit_guesses, correct_among_top
from fedsim.privacy.fdp import FAMILIES, fdp_lower_bound, gdp_mu, rejects
from fedsim.streams import AuditStream, Stream

VERDICTS = ("consistent", "violation", "no formal claim")
ANALYSES = {"dp": "f-DP, (eps, delta)-DP curve", "gdp": "f-DP, Gaussian-DP family"}


def secret_bits(canaries: int, seed: int) -> np.ndarray:
    """One independent fair coin per canary (0 or 1), from the audit's own stream."""
    return np.random.default_rng([seed, Stream.AUDIT, AuditStream.SECRET_BITS]).integers(0, 2, canaries)


def choose_canaries(n: int, canaries: int, seed: int) -> np.ndarray:
    """`canaries` distinct positions among n, in a seeded random order (the tie-break order of guesses)."""
    return np.random.default_rng([seed, Stream.AUDIT, AuditStream.CANARY_CHOICE]).choice(n, canaries, replace=False)


def ranked_guesses(statistic: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Guess 1 on the upper half of the ranking, 0 on the lower half; confidence = distance from the middle
    rank, so the k most confident are the k/2 highest and the k/2 lowest (ties: canary order)."""
    statistic = np.asarray(statistic, dtype=np.float64)
    m = len(statistic)
    rank = np.empty(m)
    rank[np.argsort(statistic, kind="stable")] = np.arange(m)
    return (rank >= m / 2).astype(np.int64), np.abs(rank - (m - 1) / 2)


def privacy_family(mechanism: object) -> str:
    """The f-DP family a mechanism's claim is read in: "gdp" for Gaussian mechanisms (they say so with a class
    attribute `privacy_family`), else the (eps, delta)-DP curve."""
    return str(getattr(mechanism, "privacy_family", "dp"))


IDEAL_DRAWS = 25  # the ideal observer's correct count is averaged over this many draws (a stable efficiency)


def ideal_statistic(family: str, epsilon: float, delta: float, bits: np.ndarray,
                    rng: np.random.Generator) -> np.ndarray:
    """The exact likelihood-ratio statistic of the worst-case mechanism with the claim's trade-off curve, on the
    same canary bits: for a Gaussian mechanism (family gdp) the canary's score is N(mu b, 1), mu the claim's;
    otherwise binary randomised response at eps (the worst case of every eps-DP mechanism, ignoring delta).
    Ranking by it is the ideal observer: no distinguisher of the audited mechanism can do better in law."""
    if family == "gdp":
        return gdp_mu(epsilon, delta) * bits + rng.standard_normal(len(bits))
    keep = rng.random(len(bits)) < float(expit(epsilon))
    return np.where(keep, bits, 1 - bits).astype(np.float64)


def ideal_bound(bits: np.ndarray, confidence: float, epsilon: float, delta: float, family: str, seed: int,
                tried: tuple[int, ...]) -> float:
    """The ideal observer's f-DP bound at the same canaries, guesses and confidence, at its mean number of
    right guesses over `IDEAL_DRAWS` draws (one draw would make the efficiency as noisy as the audit)."""
    rng = np.random.default_rng([seed, Stream.AUDIT, AuditStream.IDEAL_OBSERVER])
    counts = np.zeros(len(tried))
    for _ in range(IDEAL_DRAWS):
        guess, rank_confidence = ranked_guesses(ideal_statistic(family, epsilon, delta, bits, rng))
        counts += [correct_among_top(bits, guess, rank_confidence, k) for k in tried]
    level = 1.0 - (1.0 - confidence) / len(tried)
    return max(fdp_lower_bound(family, len(bits), k, int(round(w / IDEAL_DRAWS)), level, delta)
               for k, w in zip(tried, counts, strict=True))


def analyse(bits: np.ndarray, statistic: np.ndarray, confidence: float, formal_epsilon: float | None,
            delta: float, family: str, guesses: int | Sequence[int] | None) -> dict[str, Any]:
    """Both analyses of one ranking at the same guesses: Steinke-Nasr-Jagielski and f-DP (the verdict's)."""
    guess, rank_confidence = ranked_guesses(statistic)
    bound = audit_guesses(bits, guess, rank_confidence, confidence, delta, guesses)
    level = 1.0 - (1.0 - confidence) / len(bound.tried)  # Bonferroni over the k tried, as for Steinke
    counts = [(k, correct_among_top(bits, guess, rank_confidence, k)) for k in bound.tried]
    fdp = max(fdp_lower_bound(family, bound.canaries, k, w, level, delta) for k, w in counts)
    rejected = formal_epsilon is not None and any(
        rejects(family, formal_epsilon, delta, bound.canaries, k, w, level) for k, w in counts)
    return {"bound": bound, "fdp": fdp, "rejected": rejected}


def audit_statistic(bits: np.ndarray, statistic: np.ndarray, confidence: float, formal_epsilon: float | None,
                    formal_delta: float | None, attack: str,
                    guesses: int | Sequence[int] | None = None, family: str = "dp",
                    auditor: str = "black-box", seed: int = 0) -> dict[str, Any]:
    """The audit output object (keys as `fedsim audit --json`) from the canaries' bits and the ranking statistic.

    The verdict is the f-DP analysis (`fedsim.privacy.fdp`) of the claim's curve: the (eps, delta)-DP curve,
    or the GDP curve when `family` is "gdp" (Gaussian mechanisms); the Steinke-Nasr-Jagielski bound is given
    beside it. The bound is for pure epsilon without a formal claim, else at the claim's delta. The ideal
    observer (`ideal_statistic`) is analysed at the same canaries, guesses and confidence.
    """
    finite = np.isfinite(np.asarray(statistic, dtype=np.float64))
    if not finite.all():
        raise RuntimeError(f"{attack}: {int((~finite).sum())} canaries got no finite estimate")
    check(family in FAMILIES, f"f-DP family must be one of {', '.join(FAMILIES)}, got {family!r}")
    if formal_epsilon is not None and formal_delta is None:
        formal_delta = 0.0  # a pure claim
    delta = float(formal_delta or 0.0)
    if family == "gdp" and not 0 < delta < 1:
        family = "dp"  # a GDP reading needs a delta; a pure claim is audited with its own curve
    observed = analyse(bits, statistic, confidence, formal_epsilon, delta, family, guesses)
    bound: AuditBound = observed["bound"]
    report: dict[str, Any] = {
        "formal_epsilon": formal_epsilon,
        "formal_delta": formal_delta,
        "empirical_epsilon": observed["fdp"],
        "confidence": confidence,
        "canaries": bound.canaries,
        "guesses": bound.guesses,
        "correct": bound.correct,
        "attack": attack,
        "verdict": "no formal claim" if formal_epsilon is None else
                   "violation" if observed["rejected"] else "consistent",
        "auditor": auditor,
        "analysis": ANALYSES[family],
        "fdp_epsilon": observed["fdp"],
        "steinke_epsilon": bound.epsilon,
        "false_alarm_rate": 1.0 - confidence,
        "ideal_epsilon": None,
        "efficiency": None,
    }
    if formal_epsilon is not None:
        ideal = ideal_bound(bits, confidence, formal_epsilon, delta, family, seed, bound.tried)
        report["ideal_epsilon"] = ideal
        report["efficiency"] = observed["fdp"] / ideal if ideal > 0 else None
    return report
