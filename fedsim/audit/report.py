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

from fedsim.privacy.audit_bound import AuditBound, audit_guesses
from fedsim.streams import AuditStream, Stream

VERDICTS = ("consistent", "violation", "no formal claim")


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


def verdict(bound: AuditBound, formal_epsilon: float | None, formal_delta: float | None) -> str:
    """'violation' when the audit rejects the formal (epsilon, delta) claim at its confidence."""
    if formal_epsilon is None:
        return "no formal claim"
    return "violation" if bound.rejects(formal_epsilon, formal_delta or 0.0) else "consistent"


def audit_statistic(bits: np.ndarray, statistic: np.ndarray, confidence: float, formal_epsilon: float | None,
                    formal_delta: float | None, attack: str,
                    guesses: int | Sequence[int] | None = None) -> dict[str, Any]:
    """The audit output object (keys as `fedsim audit --json`) from the canaries' bits and the ranking statistic.

    The bound is for pure epsilon without a formal claim, else at the claim's delta.
    """
    finite = np.isfinite(np.asarray(statistic, dtype=np.float64))
    if not finite.all():
        raise RuntimeError(f"{attack}: {int((~finite).sum())} canaries got no finite estimate")
    guess, rank_confidence = ranked_guesses(statistic)
    if formal_epsilon is not None and formal_delta is None:
        formal_delta = 0.0  # a pure claim
    delta = float(formal_delta or 0.0)
    bound = audit_guesses(bits, guess, rank_confidence, confidence, delta, guesses)
    return {
        "formal_epsilon": formal_epsilon,
        "formal_delta": formal_delta,
        "empirical_epsilon": bound.epsilon,
        "confidence": confidence,
        "canaries": bound.canaries,
        "guesses": bound.guesses,
        "correct": bound.correct,
        "attack": attack,
        "verdict": verdict(bound, formal_epsilon, formal_delta),
    }
