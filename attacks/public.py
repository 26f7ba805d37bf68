"""What a curious party knows about the run's defence: its public facts, read in one place.

They come from the run's `PublicRunFacts` (`view.public.defense`): the defence names, epsilon and only the
parameters every party may know (`fedsim.rundir.PUBLIC_DEFENSE_PARAMS`), never the run's seed or config.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fedsim.rundir import PartyView

# Label mechanisms that are pure eps-label-DP on class labels (every label randomised once): the ones
# `fedsim.attacks.bound` and the `bayes` attack model.
PURE_CLASS_LABEL_DP = ("rr", "rr_with_prior")


@dataclass(frozen=True)
class PublicDefense:
    """The defence facts a run publishes: label and gradient mechanism names, epsilon, parameters."""

    label_defense: str | None
    gradient_defense: str | None
    epsilon: float | None
    params: dict = field(default_factory=dict)

    @property
    def class_label_epsilon(self) -> float | None:
        """Epsilon of a pure eps-label-DP class-label release with no gradient defence on top, else None."""
        if self.label_defense in PURE_CLASS_LABEL_DP and self.gradient_defense is None:
            return self.epsilon
        return None

    @property
    def label_range(self) -> tuple[float, float] | None:
        """The public clip range of regression labels (defence parameters `low`/`high` or `label_low`/`label_high`),
        when given."""
        for low_key, high_key in (("low", "high"), ("label_low", "label_high")):
            low, high = self.params.get(low_key), self.params.get(high_key)
            if isinstance(low, int | float) and isinstance(high, int | float) and low < high:
                return float(low), float(high)
        return None


def public_defense(view: PartyView) -> PublicDefense:
    """The run's public defence facts as the feature party sees them (the one place that reads them)."""
    facts = view.public.defense
    return PublicDefense(facts.label_defense, facts.gradient_defense, facts.epsilon, dict(facts.params))
