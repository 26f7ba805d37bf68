"""The trivial baseline: every attacked sample gets the known labels' mean. Every attack must beat it."""

from __future__ import annotations

import numpy as np

from fedsim.attacks.base import Attack, AttackerKnowledge, AttackResult
from fedsim.attacks.observations import split_known
from fedsim.registry import ATTACKS
from fedsim.rundir import PartyView


@ATTACKS.register("mean")
class MeanAttack(Attack):
    name = "mean"
    summary = "Baseline: every attacked sample gets the known labels' mean; every attack must beat it."
    tasks = ("regression", "binary")

    def run(self, view: PartyView, knowledge: AttackerKnowledge, rng: np.random.Generator) -> AttackResult:
        split = split_known(view, knowledge, view.task)
        estimate = float(np.mean(split.known_labels))
        return AttackResult(view.sample_ids[split.unknown], np.full(len(split.unknown), estimate))
