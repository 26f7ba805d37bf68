"""`fedsim.audit(...)`: the Python API's training audit (`fedsim audit train`), and its result type.

It lives in the audit package (experiments layer) rather than in `fedsim.api` because the package and the
function share the name `fedsim.audit`: once the package is imported it is the attribute `fedsim.audit`, so
the package itself is made callable (`fedsim/audit/__init__.py`) and calls `audit` here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fedsim.audit.training import audit_training
from fedsim.config import TrainConfig, validated
from fedsim.errors import check


@dataclass(frozen=True)
class AuditReport:
    """A one-run canary audit: the empirical lower bound on epsilon next to the formal claim.

    `verdict` is "consistent", "violation" (the bound exceeds the claim) or "no formal claim".
    """

    verdict: str
    empirical_epsilon: float
    formal_epsilon: float | None
    details: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return self.details



def audit(config: TrainConfig | None = None, /, *, attack: str | None = None, canaries: int | None = None,
          confidence: float = 0.95, show_progress: bool = False, **settings: Any) -> AuditReport:
    """Audit a training defence: plant canaries, train once, attack, bound epsilon from below (`fedsim audit train`).

    Args:
        config: a `TrainConfig`, or its fields as keyword arguments (as for `fedsim.train`); its seed also
            draws the canaries and their secret labels.
        attack: the distinguisher (default: the task's strongest, e.g. lba for regression).
        canaries: how many training rows get a canary label (default: a share of the rows).
        confidence: confidence of the lower bound.
        show_progress: draw a progress bar.
        **settings: `TrainConfig` fields.

    Returns:
        An `AuditReport`: the `verdict`, the `empirical_epsilon` lower bound and the `formal_epsilon` claimed
        by the defence (None for heuristic defences: no formal guarantee).

    Examples:
        >>> import fedsim
        >>> report = fedsim.audit(dataset="diabetes", epochs=2, label_defense="laplace", epsilon=1.0,
        ...                       defense_params={"low": 25, "high": 346}, seed=3)
        >>> report.verdict, report.formal_epsilon
        ('consistent', 1.0)
        >>> report.empirical_epsilon <= report.formal_epsilon
        True
    """
    check(config is None or not settings, "give either a TrainConfig or its fields as keyword arguments, not both")
    config = validated(TrainConfig, **settings) if config is None else config
    details = audit_training(config, attack=attack, canaries=canaries, confidence=confidence, seed=config.seed,
                             show_progress=show_progress)
    return AuditReport(details["verdict"], details["empirical_epsilon"], details["formal_epsilon"], details)
