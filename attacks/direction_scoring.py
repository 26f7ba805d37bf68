"""Direction (cosine) scoring (Li et al., ICLR 2022) for binary labels.

Under BCE with a scalar logit, G = (1/B)(sigmoid(g) - y) grad g: positives and negatives of one step point
in opposite directions along grad g. Each row is scored by its cosine with a reference gradient of the
same step: a known positive's when the step has one, otherwise the step's largest gradient (most likely
a positive while positives are the minority, Li et al.'s assumption; no formal guarantee). Scores are
averaged over the selected epochs and mapped to (cos + 1) / 2, so >= 0.5 means "same side as a positive".

Multiclass (one-vs-rest): the cut gradient of a class-c sample is dominated by -J^T e_c (its only negative
logit-gradient coordinate), so rows of one class point alike. Each class c gets a reference per step: the
mean unit gradient of the step's known class-c rows, else the mean unit gradient of all known class-c rows
over the selected epochs. A row's class scores are its cosines with the K references, mapped to (cos + 1) / 2
and averaged over the sample's rows; needs known labels of at least two classes.
"""

from __future__ import annotations

import numpy as np
import torch

from fedsim.attacks.base import Attack, AttackerKnowledge, AttackResult
from fedsim.attacks.observations import EpochParams, Observations, Split, observe, split_known
from fedsim.attacks.scoring import per_sample
from fedsim.errors import check
from fedsim.registry import ATTACKS
from fedsim.rundir import PartyView


def class_cosines(obs: Observations, split: Split, k: int) -> torch.Tensor:
    """(R, K) cosines of every row with each class's reference of its step (module docstring)."""
    unit = torch.nn.functional.normalize(obs.g.double(), dim=1, eps=1e-30)
    label = torch.full((len(obs.table),), -1, dtype=torch.long)
    label[torch.from_numpy(split.known)] = torch.from_numpy(split.known_labels.astype(np.int64))
    row_label = label[obs.sample]
    known = row_label >= 0
    check(len(torch.unique(row_label[known])) >= 2, "direction_scoring on a multiclass transcript needs known "
                                                    "labels of at least two classes among the selected epochs")
    cell = obs.step[known] * k + row_label[known]
    step_sum = torch.zeros(obs.steps * k, unit.shape[1], dtype=torch.float64).index_add_(0, cell, unit[known])
    step_count = torch.zeros(obs.steps * k, dtype=torch.float64).index_add_(0, cell, torch.ones(len(cell),
                                                                                                 dtype=torch.float64))
    overall = torch.zeros(k, unit.shape[1], dtype=torch.float64).index_add_(0, row_label[known], unit[known])
    reference = torch.where(step_count[:, None] > 0, step_sum, overall.repeat(obs.steps, 1)).reshape(obs.steps, k, -1)
    reference = torch.nn.functional.normalize(reference, dim=2, eps=1e-30)
    return torch.einsum("rd,rkd->rk", unit, reference[obs.step])


@ATTACKS.register("direction_scoring")
class DirectionScoring(Attack[EpochParams]):
    summary = "Li et al.'s cosine scoring against a reference positive gradient (binary)."
    tasks = ("binary", "multiclass")
    needs_known_labels = False

    def run(self, view: PartyView, knowledge: AttackerKnowledge, rng: np.random.Generator) -> AttackResult:
        obs = observe(view, self.params.epochs)
        split = split_known(view, knowledge, view.task)
        if view.task == "multiclass":
            cosine = class_cosines(obs, split, int(view.n_classes))
            return AttackResult(view.sample_ids[split.unknown], (per_sample(obs, cosine, split.unknown) + 1) / 2,
                                info={"epochs_used": obs.epochs_used})
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
