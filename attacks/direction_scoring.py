"""Direction (cosine) scoring (Li et al., ICLR 2022) for binary labels.

Under BCE with a scalar logit, G = (1/B)(sigmoid(g) - y) grad g: positives and negatives of one step point
in opposite directions along grad g. Each row is scored by its cosine with a reference gradient of the
same step: a known positive's when the step has one, otherwise the step's largest gradient (most likely
a positive while positives are the minority, Li et al.'s assumption; no formal guarantee). Scores are
averaged over the selected epochs and mapped to (cos + 1) / 2, so >= 0.5 means "same side as a positive".
"""

from __future__ import annotations

import numpy as np
import torch

from fedsim.attacks.base import Attack, AttackerKnowledge, AttackResult
from fedsim.attacks.observations import EpochParams, observe, split_known
from fedsim.attacks.scoring import per_sample
from fedsim.registry import ATTACKS
from fedsim.rundir import PartyView


@ATTACKS.register("direction_scoring")
class DirectionScoring(Attack):
    name = "direction_scoring"
    summary = "Li et al.'s cosine scoring against a reference positive gradient (binary)."
    tasks = ("binary",)
    needs_known_labels = False
    Params = EpochParams

    def run(self, view: PartyView, knowledge: AttackerKnowledge, rng: np.random.Generator) -> AttackResult:
        obs = observe(view, self.params["epochs"])
        split = split_known(view, knowledge, view.task)
        g = obs.g.double()
        priority = g.norm(dim=1) / obs.inv_b.double()  # largest gradient of the step as the fallback reference
        positive = np.zeros(len(obs.table), dtype=bool)
        positive[split.known[split.known_labels > 0.5]] = True
        priority = priority + torch.from_numpy(positive).double()[obs.sample] * (priority.max() + 1)
        best = torch.full((obs.steps,), -1.0, dtype=torch.float64).scatter_reduce(0, obs.step, priority, "amax")
        is_ref = priority == best[obs.step]
        ref_row = torch.zeros(obs.steps, dtype=torch.long).scatter_(0, obs.step[is_ref],
                                                                    torch.nonzero(is_ref).squeeze(1))
        cosine = torch.nn.functional.cosine_similarity(g, g[ref_row[obs.step]], dim=1, eps=1e-30)
        score = per_sample(obs, cosine, split.unknown)
        return AttackResult(view.sample_ids[split.unknown], (score + 1) / 2, info={"epochs_used": obs.epochs_used})
