"""The trivial baseline: every attacked sample gets the known labels' mean. Every attack must beat it.

Multiclass: the mean of the known labels' one-hot rows, i.e. their class frequencies (arg-max: the majority
class)."""

from __future__ import annotations

import numpy as np

from fedsim.attacks.base import Attack, AttackerKnowledge, AttackResult
from fedsim.attacks.observations import split_known
from fedsim.params import NoParams
from fedsim.registry import ATTACKS
from fedsim.rundir import PartyView


@ATTACKS.register("mean")
class MeanAttack(Attack[NoParams]):
    summary = "Baseline: every attacked sample gets the known labels' mean; every attack must beat it."
    tasks = ("regression", "binary", "multiclass")

    def run(self, view: PartyView, knowledge: AttackerKnowledge, rng: np.random.Generator) -> AttackResult:
        split = split_known(view, knowledge, view.task)
        if view.task == "multiclass":
            k = int(view.n_classes)
            freq = np.bincount(split.known_labels.astype(np.int64), minlength=k) / len(split.known_labels)
            return AttackResult(view.sample_ids[split.unknown], np.tile(freq, (len(split.unknown), 1)))
        estimate = float(np.mean(split.known_labels))
        return AttackResult(view.sample_ids[split.unknown], np.full(len(split.unknown), estimate))
