"""The attack interface: a feature party's view plus explicit knowledge in, label estimates out.

An attack never sees label-party objects or the truth file; scoring happens outside (fedsim.metrics).
Parameters arrive as a dict of KEY=VALUE values (CLI `--param`); each attack declares its parameters and
their defaults in `defaults`, and `Attack(params)` checks names and types once, up front.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from fedsim.config import ModelConfig
from fedsim.errors import UserError
from fedsim.rundir import PartyView

ParamValue = float | int | bool | str
ATTACK_SEED = 40  # seed-sequence tag of the attack streams (known-label choice, attack randomness)


@dataclass(frozen=True)
class AttackerKnowledge:
    """What the curious feature party knows besides its own view."""

    known_ids: np.ndarray  # sample ids whose labels leaked
    known_labels: np.ndarray  # their true labels
    label_range: tuple[float, float] | None = None
    top_model_guess: ModelConfig | None = None  # architecture guess for a surrogate top model


@dataclass
class AttackResult:
    """Label estimates for `ids` (the attacked samples); `readouts` may hold alternative estimates."""

    ids: np.ndarray
    estimates: np.ndarray
    readouts: dict[str, np.ndarray] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)


class Attack:
    """Base class: subclasses set `name`, `tasks`, `needs_known_labels`, `defaults` and implement `run`.

    `choices` restricts string parameters to a set; numeric parameters must be finite and >= 0 (a few
    attacks check > 0 themselves). `epochs` (where declared) is "last", "all" or a count of last epochs.
    """

    name: ClassVar[str] = ""
    tasks: ClassVar[tuple[str, ...]] = ("regression",)
    needs_known_labels: ClassVar[bool] = True
    min_known: ClassVar[int] = 1
    defaults: ClassVar[dict[str, ParamValue]] = {}
    choices: ClassVar[dict[str, tuple[str, ...]]] = {}

    def __init__(self, params: dict[str, ParamValue] | None = None, show_progress: bool = False) -> None:
        params = {str(k).replace("-", "_"): v for k, v in (params or {}).items()}
        unknown = sorted(set(params) - set(self.defaults))
        if unknown:
            valid = ", ".join(sorted(self.defaults)) or "none"
            raise UserError(f"attack {self.name!r} has no parameter {unknown[0]!r}; valid: {valid}")
        self.explicit = set(params)
        self.params = {k: self._coerce(k, params.get(k, d)) for k, d in self.defaults.items()}
        self.show_progress = show_progress

    def _coerce(self, key: str, value: ParamValue) -> ParamValue:
        default = self.defaults[key]
        where = f"attack {self.name!r} parameter {key!r}"
        if key == "epochs":
            return parse_epochs(value, where)
        if isinstance(default, bool):
            if isinstance(value, str) and value.lower() in {"true", "false"}:
                return value.lower() == "true"
            if not isinstance(value, bool):
                raise UserError(f"{where} must be true or false, got {value!r}")
            return value
        if isinstance(default, int | float):
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
                raise UserError(f"{where} must be a finite number >= 0, got {value!r}")
            if isinstance(default, int) and value != int(value):
                raise UserError(f"{where} must be a whole number, got {value!r}")
            return type(default)(value)
        value = str(value)
        allowed = self.choices.get(key)
        if allowed is not None and value not in allowed:
            raise UserError(f"{where} must be one of: {', '.join(allowed)}; got {value!r}")
        return value

    def run(self, view: PartyView, knowledge: AttackerKnowledge, rng: np.random.Generator) -> AttackResult:
        raise NotImplementedError


def parse_epochs(value: ParamValue, where: str = "epochs") -> str | int:
    """'last', 'all' or a positive whole number of last epochs."""
    if isinstance(value, str) and value in {"last", "all"}:
        return value
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return value
    raise UserError(f"{where} must be 'last', 'all' or a number of last epochs >= 1, got {value!r}")
