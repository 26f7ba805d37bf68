"""Norm scoring (Li et al., ICLR 2022) for binary labels: the rare positive class gets larger gradients.

Under BCE, G = (1/B)(sigmoid(g) - y) grad g: a positive's residual 1 - sigmoid is large while the model
predicts the (common) negative class. The score is ||G|| * B (undoing the mean reduction, so a short last
batch compares with the others), averaged over the selected epochs; its AUC against the labels is the leak
AUC. For a hard guess the log-scores are split where the known labels' positive rate says (or, with no
known labels, at the midpoint of a two-means split), and mapped through a logistic so that >= 0.5 means
positive. For regression this only measures |residual|, not the label (see docs/spec-attacks.md).

Multiclass (one-vs-rest): a class whose samples the model fits worse (a rare or hard class) gets larger
gradients. Each class's log-scores among the known labels are modelled as a Gaussian (own mean, pooled
variance, the known class frequency as prior), and a sample's class scores are the posteriors of its
log-score. The norm carries one number per sample, so at most it separates classes by how well they are
fitted; on balanced, equally hard classes it stays near the majority baseline (Li et al. claim binary only).
"""

from __future__ import annotations

import numpy as np

from fedsim.attacks.base import Attack, AttackerKnowledge, AttackResult
from fedsim.attacks.observations import EpochParams, observe, split_known
from fedsim.attacks.scoring import class_posteriors, per_sample
from fedsim.registry import ATTACKS
from fedsim.rundir import PartyView


def threshold_scores(score: np.ndarray, positive_rate: float | None) -> np.ndarray:
    """Monotone map of scores to (0, 1) with 0.5 at the threshold (known positive rate, else two-means)."""
    if positive_rate is not None:
        cut = float(np.quantile(score, 1 - positive_rate))
    else:
        cut = float(np.median(score))
        for _ in range(50):
            low, high = score[score <= cut], score[score > cut]
            if not len(low) or not len(high):
                break
            cut = (low.mean() + high.mean()) / 2
    spread = float(score.std()) or 1.0
    return 1 / (1 + np.exp(-(score - cut) / spread))


@ATTACKS.register("norm_scoring")
class NormScoring(Attack[EpochParams]):
    summary = "Li et al.'s norm scoring: the rare positive class gets larger gradients (binary)."
    tasks = ("binary", "multiclass")
    needs_known_labels = False

    def run(self, view: PartyView, knowledge: AttackerKnowledge, rng: np.random.Generator) -> AttackResult:
        obs = observe(view, self.params.epochs)
        split = split_known(view, knowledge, view.task)
        row_score = obs.g.double().norm(dim=1) / obs.inv_b.double()
        if view.task == "multiclass":
            every = np.log(per_sample(obs, row_score, np.arange(len(view.sample_ids))) + 1e-30)
            estimates = class_posteriors(every[split.known], split.known_labels, every[split.unknown],
                                         int(view.n_classes))
            return AttackResult(view.sample_ids[split.unknown], estimates, info={"epochs_used": obs.epochs_used})
        score = np.log(per_sample(obs, row_score, split.unknown) + 1e-30)
        rate = float(np.mean(split.known_labels)) if len(split.known_labels) else None
        return AttackResult(view.sample_ids[split.unknown], threshold_scores(score, rate),
                            info={"epochs_used": obs.epochs_used})
