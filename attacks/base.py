"""The attack interface: a feature party's view plus explicit knowledge in, label estimates out.

An attack never sees label-party objects or the truth file; scoring happens outside (fedsim.metrics).
Parameters arrive as a dict of KEY=VALUE values (CLI `--param`, grid TOML); each attack declares them once
in its `Params` schema (`fedsim.params`), and `Attack(params)` checks names and values once, up front and
keeps the typed model.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Generic, TypeVar, cast, get_args, get_origin

import numpy as np

from fedsim.config import ModelConfig
from fedsim.params import NoParams, PluginParams, validate_params
from fedsim.rundir import PartyView

ParamValue = float | int | bool | str
P = TypeVar("P", bound=PluginParams)


@dataclass(frozen=True)
class AttackerKnowledge:
    """What the curious feature party knows besides its own view."""

    known_ids: np.ndarray  # sample ids whose labels leaked
    known_labels: np.ndarray  # their true labels
    label_range: tuple[float, float] | None = None
    top_model_guess: ModelConfig | None = None  # architecture guess for a surrogate top model

    def hold_out(self, share: float, minimum: int, rng: np.random.Generator) -> tuple[np.ndarray, AttackerKnowledge]:
        """A seeded part of the known labels (`share` of them, at least `minimum`) held out, as a mask over the
        known labels, and the knowledge of the rest: how an attacker tunes or calibrates without the truth."""
        held = np.zeros(len(self.known_ids), dtype=bool)
        held[rng.permutation(len(held))[:max(minimum, int(round(share * len(held))))]] = True
        labels = np.asarray(self.known_labels, dtype=np.float64)
        return held, replace(self, known_ids=np.asarray(self.known_ids)[~held], known_labels=labels[~held])


@dataclass
class AttackResult:
    """Label estimates for `ids` (the attacked samples); `readouts` may hold alternative estimates."""

    ids: np.ndarray
    estimates: np.ndarray
    readouts: dict[str, np.ndarray] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)


class Attack(Generic[P]):
    """Base class: subclasses name their `Params` (below), set `summary`, `tasks`, `needs_known_labels` and
    implement `run` (the registry sets `name`).

    `Params` is the attack's parameter schema (`fedsim.params`), named once as the type argument
    (`class LBA(Attack[LBAParams])`): the class gets it as `Params` and `self.params.epochs` is typed. A
    subclass may still set `Params` itself (a variant with other defaults). `Attack(params)` validates the
    values once, up front, and keeps the validated model as `self.params` (defaults filled in) and the names
    given as `explicit`.
    """

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    tasks: ClassVar[tuple[str, ...]] = ("regression",)
    needs_known_labels: ClassVar[bool] = True
    min_known: ClassVar[int] = 1
    Params: ClassVar[type[PluginParams]] = NoParams

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "Params" in cls.__dict__:
            return
        for base in cls.__dict__.get("__orig_bases__", ()):
            schema = next(iter(get_args(base)), None)
            if get_origin(base) is Attack and isinstance(schema, type) and issubclass(schema, PluginParams):
                cls.Params = schema

    def __init__(self, params: dict[str, ParamValue] | None = None, show_progress: bool = False) -> None:
        validated = validate_params(self.Params, params, f"attack {self.name!r}")
        self.explicit = set(validated.model_fields_set)
        self.params = cast(P, validated)
        self.show_progress = show_progress

    def run(self, view: PartyView, knowledge: AttackerKnowledge, rng: np.random.Generator) -> AttackResult:
        raise NotImplementedError

