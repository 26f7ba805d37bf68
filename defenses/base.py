"""What every defence shares: typed parameters with one-line errors, the task check, claims from a ledger."""

from __future__ import annotations

import math
from typing import Any, ClassVar

from fedsim.errors import UserError, check
from fedsim.privacy.claims import PrivacyClaim
from fedsim.privacy.ledger import PrivacyLedger

NO_GUARANTEE = "no formal guarantee"


class Params:
    """A defence's `--defense-param` values: typed reads with defaults, and `done()` rejects leftovers."""

    def __init__(self, owner: str, values: dict[str, Any], allowed: tuple[str, ...]) -> None:
        self.owner, self.values, self.allowed = owner, dict(values), allowed
        unknown = sorted(set(self.values) - set(allowed))
        if unknown:
            valid = ", ".join(allowed) if allowed else "none"
            raise UserError(f"unknown parameter {unknown[0]!r} for defence {owner!r}; valid: {valid}")

    def number(self, name: str, default: float | None = None, *, low: float | None = None,
               high: float | None = None, low_open: bool = False, high_open: bool = False) -> float | None:
        """A finite float parameter inside [low, high] (open ends on request), or `default` if absent."""
        value = self.values.get(name, default)
        if value is None:
            return None
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        if ok and low is not None:
            ok = value > low if low_open else value >= low
        if ok and high is not None:
            ok = value < high if high_open else value <= high
        if not ok:
            lo = "" if low is None else f"{'>' if low_open else '>='} {low}"
            hi = "" if high is None else f"{'<' if high_open else '<='} {high}"
            rule = " and ".join(p for p in (lo, hi) if p) or "finite"
            raise UserError(f"{self.owner}: parameter {name} must be a finite number {rule}, got {value!r}")
        return float(value)

    def integer(self, name: str, default: int, *, low: int = 1) -> int:
        value = self.values.get(name, default)
        check(isinstance(value, int) and not isinstance(value, bool) and value >= low,
              f"{self.owner}: parameter {name} must be an integer >= {low}, got {value!r}")
        return int(value)

    def flag(self, name: str, default: bool) -> bool:
        value = self.values.get(name, default)
        check(isinstance(value, bool), f"{self.owner}: parameter {name} must be true or false, got {value!r}")
        return bool(value)

    def choice(self, name: str, default: str, options: tuple[str, ...]) -> str:
        value = self.values.get(name, default)
        check(value in options, f"{self.owner}: parameter {name} must be one of {', '.join(options)}, got {value!r}")
        return str(value)


class Defense:
    """Mixin of both hook kinds: `tasks` it applies to and `params` it accepts (names, for routing)."""

    name: ClassVar[str] = "none"
    tasks: ClassVar[tuple[str, ...]] = ("regression", "binary")
    params: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def check_task(cls, task: str) -> None:
        check(task in cls.tasks,
              f"defence {cls.name!r} applies to {' or '.join(cls.tasks)} tasks only, not {task!r}")

    @classmethod
    def read_params(cls, params: dict[str, Any]) -> Params:
        return Params(cls.name, params, cls.params)


def heuristic_claim(name: str, what: str, **details: Any) -> PrivacyClaim:
    """The claim of a defence without a DP bound: epsilon None and the words 'no formal guarantee'."""
    return PrivacyClaim(name, None, None, f"{NO_GUARANTEE}: {what}", dict(details))


def require_events(name: str, ledger: PrivacyLedger) -> None:
    """A formal claim exists once its mechanism has run; an empty ledger must never read as 0-DP."""
    if not ledger.events:  # a programming error, not a user's
        raise RuntimeError(f"{name}: its privacy claim exists once the mechanism has run (apply / prepare)")


def ledger_claim(name: str, ledger: PrivacyLedger, delta: float | None, sentence: str,
                 epsilon: float | None = None, **details: Any) -> PrivacyClaim:
    """A formal claim whose epsilon is the ledger's total (pure events: delta 0), unless a tighter exact
    analysis gives `epsilon` (the caller's docstring proves it; the ledger's numbers stay in the details)."""
    require_events(name, ledger)
    epsilon = ledger.epsilon(delta) if epsilon is None else epsilon
    return PrivacyClaim(name, epsilon, 0.0 if ledger.pure else delta, sentence,
                        {**details, "ledger": ledger.summary(delta)})
