"""Typed reads of KEY=VALUE plugin parameters (`--defense-param`), with one-line errors."""

from __future__ import annotations

import math
from typing import Any

from fedsim.errors import UserError, check


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
