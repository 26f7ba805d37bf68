"""The attack interface: a feature party's view plus explicit knowledge in, label estimates out.

An attack never sees label-party objects or the truth file; scoring happens outside (fedsim.metrics).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from fedsim.config import ModelConfig
from fedsim.rundir import PartyView


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
    """Base class: subclasses set `name`, `tasks`, `needs_known_labels` and implement `run`."""

    name: ClassVar[str] = ""
    tasks: ClassVar[tuple[str, ...]] = ("regression",)
    needs_known_labels: ClassVar[bool] = True

    def run(self, view: PartyView, knowledge: AttackerKnowledge, rng: np.random.Generator) -> AttackResult:
        raise NotImplementedError
