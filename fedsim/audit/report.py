"""What every audit shares: the canaries' secret bits, the guessing rule, and the output object.

The guessing rule is fixed before any run: the auditor ranks the canaries by a statistic that grows with
the evidence for bit 1 (an attack's label estimate, a released count, a log-likelihood ratio) and guesses
1 on the k/2 highest and 0 on the k/2 lowest; k is `fixed_guesses(m)`, or, when the statistic follows a known
law (the white-box auditor's likelihood ratio; the released labels of a label mechanism that declares its law,
audited alone or read back by the black-box attack), planned from the claim by the ideal observer
(`fedsim.audit.ideal.planned_guesses`), unless the caller fixes another k or tries several with a Bonferroni
correction (`fedsim.privacy.audit_bound`). Ranking instead of a fixed
threshold makes the rule indifferent to a shifted or shrunk estimate, and it only looks at the output.

k-ary canaries (a uniform secret among k public classes): the auditor gives each canary a guessed class and
a confidence score, both functions of the mechanism's output alone, and the r most confident guesses are
counted, r chosen by the same policy (fixed in advance, or several with Bonferroni); the f-DP analysis with
an alphabet of k turns them into the bound.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from fedsim.audit.ideal import IdealLaw, family_law, ideal_guesses, planned_guesses
from fedsim.errors import check
from fedsim.privacy.audit_bound import AuditBound, audit_guesses, correct_among_top, ranked_guesses, tried_guesses
from fedsim.privacy.fdp import family_name, family_steps, fdp_lower_bound, rejects, rr_family
from fedsim.streams import AuditStream, Stream

VERDICTS = ("consistent", "violation", "no formal claim")


def secret_bits(canaries: int, seed: int, classes: int = 2) -> np.ndarray:
    """One independent uniform secret per canary in 0..classes-1 (classes 2: a fair coin, 0 or 1), from the
    audit's own stream (the same draws as a coin's for classes 2)."""
    check(classes >= 2, f"canaries need at least 2 public classes, got {classes}")
    return np.random.default_rng([seed, Stream.AUDIT, AuditStream.SECRET_BITS]).integers(0, classes, canaries)


def choose_canaries(n: int, canaries: int, seed: int) -> np.ndarray:
    """`canaries` distinct positions among n, in a seeded random order (the tie-break order of guesses)."""
    return np.random.default_rng([seed, Stream.AUDIT, AuditStream.CANARY_CHOICE]).choice(n, canaries, replace=False)


def class_guesses(estimates: np.ndarray, classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Each k-ary canary's guessed class in 0..classes-1 and a confidence, from an output alone: for (n, K) class
    scores restricted to the canary classes, the argmax and the top score minus the second; for class indices,
    the class itself with confidence 1, or an abstention (guess 0, confidence 0, the least confident) outside
    0..classes-1. A missing (NaN) estimate gives a NaN confidence, which the report refuses."""
    estimates = np.asarray(estimates, dtype=np.float64)
    if estimates.ndim == 2:
        scores = estimates[:, :classes]
        top = np.sort(scores, axis=1)[:, -2:]
        return np.argmax(scores, axis=1), top[:, 1] - top[:, 0]
    inside = np.isin(estimates, np.arange(classes))
    score = np.where(np.isnan(estimates), np.nan, inside.astype(np.float64))
    return np.where(inside, estimates, 0).astype(np.int64), score


def privacy_family(mechanism: object, epochs: int = 1) -> str:
    """The f-DP family a mechanism's claim is read in (`fedsim.privacy.fdp`), from its class attribute
    `privacy_family`: "gdp" for Gaussian mechanisms, "rr_per_epoch" for one binary randomised response per
    epoch (`rr_family(epochs)`); else the (eps, delta)-DP curve."""
    family = str(getattr(mechanism, "privacy_family", "dp"))
    return rr_family(epochs) if family == "rr_per_epoch" else family


IDEAL_DRAWS = 25  # the ideal observer's correct count is averaged over this many draws (a stable efficiency)
STEINKE_BINARY = "Steinke-Nasr-Jagielski's bound is for binary canaries; k-ary canaries have the f-DP analysis only"
IDEAL_GDP_KARY = "no k-ary ideal observer for the Gaussian-DP family (only k-ary randomised response, family dp)"


def ideal_bound(secrets: np.ndarray, confidence: float, epsilon: float, delta: float, family: str, seed: int,
                tried: tuple[int, ...], classes: int = 2, law: IdealLaw | None = None) -> float:
    """The ideal observer's f-DP bound (law `law`, default the family's worst case) at the same canaries, guesses
    and confidence, at its mean number of right guesses over `IDEAL_DRAWS` draws (one draw would make the
    efficiency as noisy as the audit)."""
    law = family_law(family) if law is None else law
    rng = np.random.default_rng([seed, Stream.AUDIT, AuditStream.IDEAL_OBSERVER])
    counts = np.zeros(len(tried))
    for _ in range(IDEAL_DRAWS):
        guess, rank_confidence = ideal_guesses(law, epsilon, delta, secrets, classes, rng)
        counts += [correct_among_top(secrets, guess, rank_confidence, k) for k in tried]
    level = 1.0 - (1.0 - confidence) / len(tried)
    return max(fdp_lower_bound(family, len(secrets), k, int(round(w / IDEAL_DRAWS)), level, delta, classes)
               for k, w in zip(tried, counts, strict=True))


def analyse(secrets: np.ndarray, guess: np.ndarray, score: np.ndarray, confidence: float,
            formal_epsilon: float | None, delta: float, family: str, guesses: int | Sequence[int] | None,
            classes: int) -> dict[str, Any]:
    """The analyses of one set of guesses (the r most confident counted, r fixed in advance, Bonferroni over
    the r tried): f-DP with an alphabet of `classes` (the verdict's), and Steinke-Nasr-Jagielski for binary
    canaries (None for k-ary). The reported guesses and correct count: Steinke's best r (binary), else f-DP's."""
    m = len(secrets)
    steinke = audit_guesses(secrets, guess, score, confidence, delta, guesses) if classes == 2 else None
    tried = tried_guesses(m, guesses) if steinke is None else steinke.tried
    level = 1.0 - (1.0 - confidence) / len(tried)  # Bonferroni over the r tried, as for Steinke
    counts = [(k, correct_among_top(secrets, guess, score, k)) for k in tried]
    bounds = [fdp_lower_bound(family, m, k, w, level, delta, classes) for k, w in counts]
    rejected = formal_epsilon is not None and any(
        rejects(family, formal_epsilon, delta, m, k, w, level, classes) for k, w in counts)
    reported = (steinke.guesses, steinke.correct) if steinke is not None else counts[int(np.argmax(bounds))]
    return {"steinke": steinke, "fdp": max(bounds), "rejected": rejected, "tried": tried,
            "guesses": reported[0], "correct": reported[1]}


def audit_statistic(bits: np.ndarray, statistic: np.ndarray, confidence: float, formal_epsilon: float | None,
                    formal_delta: float | None, attack: str,
                    guesses: int | Sequence[int] | None = None, family: str = "dp",
                    auditor: str = "black-box", seed: int = 0, law: IdealLaw | None = None) -> dict[str, Any]:
    """The audit output object (keys as `fedsim audit --json`) of binary canaries from their bits and the ranking
    statistic (`ranked_guesses`; `audit_guesses_report` has the rest)."""
    finite = np.isfinite(np.asarray(statistic, dtype=np.float64))
    if not finite.all():
        raise RuntimeError(f"{attack}: {int((~finite).sum())} canaries got no finite estimate")
    guess, score = ranked_guesses(statistic)
    return audit_guesses_report(bits, guess, score, confidence, formal_epsilon, formal_delta, attack, guesses,
                                family, auditor, seed, law=law)


def audit_guesses_report(secrets: np.ndarray, guess: np.ndarray, score: np.ndarray, confidence: float,
                         formal_epsilon: float | None, formal_delta: float | None, attack: str,
                         guesses: int | Sequence[int] | None = None, family: str = "dp",
                         auditor: str = "black-box", seed: int = 0, classes: int = 2,
                         law: IdealLaw | None = None) -> dict[str, Any]:
    """The audit output object (keys as `fedsim audit --json`) from each canary's secret (0..classes-1), guessed
    class and confidence score; the score must be a function of the mechanism's output only.

    The verdict is the f-DP analysis (`fedsim.privacy.fdp`, alphabet `classes`) of the claim's curve: the
    (eps, delta)-DP curve, or the GDP curve when `family` is "gdp" (Gaussian mechanisms); for binary canaries
    the Steinke-Nasr-Jagielski bound is given beside it (null for k-ary ones, `steinke_reason` says why). The
    bound is for pure epsilon without a formal claim, else at the claim's delta. The ideal observer
    (`fedsim.audit.ideal`, law `law`, default the family's worst case) is analysed at the same canaries, guesses
    and confidence. With a `law` given (a statistic that follows it: module docstring) and no `guesses`, the
    number of guesses is planned from the claim (`planned_guesses`); otherwise `fixed_guesses(m)`. The plan
    uses public facts only, so the bound is valid whether or not the statistic really follows the law.
    """
    finite = np.isfinite(np.asarray(score, dtype=np.float64))
    if not finite.all():
        raise RuntimeError(f"{attack}: {int((~finite).sum())} canaries got no finite confidence")
    steps = family_steps(family)  # a one-line error for an unknown family
    if formal_epsilon is not None and formal_delta is None:
        formal_delta = 0.0  # a pure claim
    delta = float(formal_delta or 0.0)
    if family == "gdp" and not 0 < delta < 1:
        family = "dp"  # a GDP reading needs a delta; a pure claim is audited with its own curve
    if steps is not None and (classes > 2 or delta > 0):
        family = "dp"  # the composed-RR curve is for binary canaries of a pure claim
    kary_gdp = classes > 2 and family == "gdp"
    if guesses is None and law is not None and formal_epsilon is not None and not kary_gdp:
        guesses = planned_guesses(law, family, float(formal_epsilon), delta, len(secrets), confidence, classes)
    observed = analyse(secrets, guess, score, confidence, formal_epsilon, delta, family, guesses, classes)
    steinke: AuditBound | None = observed["steinke"]
    report: dict[str, Any] = {
        "formal_epsilon": formal_epsilon,
        "formal_delta": formal_delta,
        "empirical_epsilon": observed["fdp"],
        "confidence": confidence,
        "canaries": len(secrets),
        "canary_classes": classes,
        "guesses": observed["guesses"],
        "correct": observed["correct"],
        "attack": attack,
        "verdict": "no formal claim" if formal_epsilon is None else
                   "violation" if observed["rejected"] else "consistent",
        "auditor": auditor,
        "analysis": family_name(family),
        "fdp_epsilon": observed["fdp"],
        "steinke_epsilon": None if steinke is None else steinke.epsilon,
        "false_alarm_rate": 1.0 - confidence,
        "ideal_epsilon": None,
        "efficiency": None,
    }
    if steinke is None:
        report["steinke_reason"] = STEINKE_BINARY
    if formal_epsilon is not None and kary_gdp:
        report["ideal_reason"] = IDEAL_GDP_KARY
    elif formal_epsilon is not None:
        ideal = ideal_bound(secrets, confidence, formal_epsilon, delta, family, seed, observed["tried"], classes, law)
        report["ideal_epsilon"] = ideal
        report["efficiency"] = observed["fdp"] / ideal if ideal > 0 else None
    return report
