"""What a defence guarantees, and how the label and gradient guarantees of one run combine."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class PrivacyClaim:
    """An (epsilon, delta) label-DP guarantee with the sentence that states it, or epsilon=None (no bound)."""

    mechanism: str
    epsilon: float | None
    delta: float | None
    guarantee: str
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def formal(self) -> bool:
        return self.epsilon is not None


NO_DEFENSE = PrivacyClaim(
    "none", None, None, "no defence: no formal guarantee; every cut gradient is computed from the true labels"
)


def combine_claims(label: PrivacyClaim | None, gradient: PrivacyClaim | None) -> PrivacyClaim:
    """The guarantee of a run with a label defence and a gradient defence.

    Proof sketch: if the labels are randomised once and the label party uses only the randomised labels,
    everything it sends is post-processing, so the label claim holds for the whole transcript. A
    gradient claim that holds for any label values (clip + noise) holds as well, since conditioning on the
    randomised labels and coupling the other samples' randomisation identically gives the same bound.
    Both bounds hold at once, so the run is reported with the smaller epsilon (and its delta).
    """
    claims = [c for c in (label, gradient) if c is not None]
    if not claims:
        return NO_DEFENSE
    formal = [c for c in claims if c.formal]
    if not formal:
        return PrivacyClaim(
            "+".join(c.mechanism for c in claims), None, None,
            "no formal guarantee: " + "; ".join(c.guarantee.removeprefix("no formal guarantee: ") for c in claims),
            {k: v for c in claims for k, v in c.details.items()},
        )
    best = min(formal, key=lambda c: (c.epsilon, c.delta or 0.0))
    others = [c.guarantee for c in claims if c is not best]
    sentence = best.guarantee + (" (also applied: " + "; ".join(others) + ")" if others else "")
    return PrivacyClaim(best.mechanism, best.epsilon, best.delta, sentence, dict(best.details))
