"""Randomised response for class labels: plain k-ary RR, and RR-with-prior (Ghazi et al., "Deep Learning
with Label Differential Privacy", NeurIPS 2021, arXiv 2102.06062).

RRTop-k against a prior p: Y_k = the k classes of largest prior mass. A label inside Y_k is kept with
probability e^eps/(e^eps + k - 1) and replaced by each other member of Y_k with probability
1/(e^eps + k - 1); a label outside Y_k becomes a uniform member of Y_k. Every output o in Y_k has
probability between 1/(e^eps + k - 1) and e^eps/(e^eps + k - 1) under every input (1/k lies between), so
the mechanism is eps-DP for any prior that does not depend on the label itself. RRWithPrior picks
k* = argmax_k e^eps/(e^eps + k - 1) * p(Y_k), the probability of emitting the true class.

LP-2ST, the paper's two-stage scheme with a per-example prior (`RRWithPrior`):

- Stage 1: a seeded random `stage1_fraction` of the training rows (default 0.7) get k-ary RR labels in
  `apply`. For the first `stage1_epochs_fraction` of the training steps the split model trains on them
  alone: the other (stage-2) rows stay in the batches with loss weight 0 and placeholder targets, so their
  cut gradients are exactly 0 and nothing about their labels is used; the label party keeps their latest
  embeddings (`fedsim.protocol.PendingLabels`).
- Stage 2: at the switch (after `stage1_epochs_fraction` of the steps, default 0.3) the label party gives
  the split model's class probabilities for each stage-2 row (the top model on its latest embeddings; the
  uniform prior, i.e. plain RR, for a row no batch has held yet, which happens only when stage 1 is shorter
  than an epoch) to `release`, which draws its label by RRTop-k* against that per-example prior; training
  then continues on every row with its randomised label.

Privacy (eps-label-DP, replace-one neighbours). The stage split is drawn independently of the labels. A
stage-1 label goes through k-ary RR (eps-DP). A stage-2 label y_i goes through RRTop-k* against a prior
that is a function of the features, the stage-1 releases and label-independent randomness only (no
stage-2 label enters training before the switch: weight 0, placeholder target), so given the earlier
outputs it is an eps-DP mechanism of y_i alone. Every label is randomised exactly once, on disjoint rows:
for neighbours differing in label i, the joint density of all releases factorises into per-row
conditional factors of which only row i's depends on y_i, so the ratio is at most e^eps (adaptive
parallel composition). Training, the transcript and the metrics are post-processing of the releases and
the features (the feature parties see the stage split, as zero stage-1 gradients: it is label-independent).
The ledger holds one RR event covering every label once; the prior costs no budget of its own
(`prior_epsilon` 0 in the report).

K, the number of classes, is 2 for a binary task and max(label) + 1 for a multiclass one: the dataset
refuses a class that occurs only in the test split, so every class 0..K-1 occurs among the training labels.
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from fedsim.defenses.base import Defense, ledger_claim, require_events
from fedsim.errors import check
from fedsim.params import Number, PluginParams
from fedsim.privacy.claims import PrivacyClaim
from fedsim.privacy.ledger import PrivacyLedger
from fedsim.privacy.mechanisms import check_epsilon, randomized_response, rr_keep_probability
from fedsim.protocol import LabelTransform, PendingLabels, TrainingPlan
from fedsim.registry import LABEL_DEFENSES


def class_count(y: np.ndarray, task: str) -> int:
    """K of the labels (module docstring): 2 for binary, max(label) + 1 for multiclass."""
    return 2 if task == "binary" else int(np.max(y)) + 1


def class_labels(y: np.ndarray, num_classes: int) -> np.ndarray:
    labels = np.asarray(y)
    check(np.all(labels == np.round(labels)) and labels.min() >= 0 and labels.max() < num_classes,
          f"randomised response needs class labels in 0..{num_classes - 1}")
    return labels.astype(np.int64)


def top_k_sizes(priors: np.ndarray, epsilon: float) -> np.ndarray:
    """k* of RRTop-k for each row of `priors` (n, K): the k maximising P(output = true label) = keep(k) * the
    mass of the top k (the first such k on a tie)."""
    priors = np.asarray(priors, float)
    mass = np.cumsum(-np.sort(-priors, axis=1), axis=1)
    keeps = np.array([rr_keep_probability(epsilon, k) for k in range(1, priors.shape[1] + 1)])
    return np.argmax(keeps[None, :] * mass, axis=1) + 1


def top_k_size(prior: np.ndarray, epsilon: float) -> int:
    """k* of RRTop-k against one prior (`top_k_sizes`)."""
    return int(top_k_sizes(np.asarray(prior, float)[None, :], epsilon)[0])


def rr_top_k_matrix(prior: np.ndarray, epsilon: float, k: int | None = None) -> np.ndarray:
    """Transition matrix P(output j | input i) of RRTop-k (k = k* when omitted)."""
    prior = np.asarray(prior, float)
    n = len(prior)
    k = top_k_size(prior, epsilon) if k is None else k
    top = np.argsort(-prior, kind="stable")[:k]
    out = np.zeros((n, n))
    keep = rr_keep_probability(epsilon, k)
    other = (1 - keep) / (k - 1) if k > 1 else 0.0
    for i in range(n):
        if i in top:
            out[i, top] = other
            out[i, i] = keep
        else:
            out[i, top] = 1.0 / k
    return out


def rr_top_k_rows(labels: np.ndarray, priors: np.ndarray, epsilon: float) -> np.ndarray:
    """Row `labels[i]` of RRTop-k* against `priors[i]`, for every i at once: (n, K) output distributions
    (equal to `rr_top_k_matrix(priors[i], epsilon)[labels[i]]`, same tie rule)."""
    priors = np.asarray(priors, float)
    classes = priors.shape[1]
    order = np.argsort(-priors, axis=1, kind="stable")
    k = top_k_sizes(priors, epsilon)
    in_top = np.argsort(order, axis=1) < k[:, None]  # class c is among the k* of largest prior
    keep = np.array([rr_keep_probability(epsilon, int(j)) for j in range(1, classes + 1)])[k - 1]
    other = np.where(k > 1, (1 - keep) / np.maximum(k - 1, 1), 0.0)
    inside = in_top[np.arange(len(labels)), labels]
    out = np.where(in_top, np.where(inside, other, 1.0 / k)[:, None], 0.0)
    out[np.flatnonzero(inside), labels[inside]] = keep[inside]
    return out


def rr_with_prior(labels: np.ndarray, prior: np.ndarray, epsilon: float, rng: np.random.Generator) -> np.ndarray:
    """Sample RRTop-k* for each label against `prior`: one (K,) prior for all, or (n, K), one per label
    (eps-DP per label for any prior independent of that label, see the module docstring)."""
    labels = np.asarray(labels, np.int64)
    prior = np.asarray(prior, float)
    priors = np.broadcast_to(prior, (len(labels), prior.shape[-1]))
    cumulative = np.cumsum(rr_top_k_rows(labels, priors, epsilon), axis=1)
    draws = (rng.random(len(labels))[:, None] > cumulative).sum(axis=1)
    return np.minimum(draws, priors.shape[1] - 1)


class _ClassLabelDefense(Defense, LabelTransform):
    tasks = ("binary", "multiclass")
    takes_epsilon = True

    def __init__(self, epsilon: float) -> None:
        self.epsilon = epsilon
        self.ledger = PrivacyLedger()
        self.report: dict = {}

    def privacy(self) -> PrivacyClaim:
        require_events(self.name, self.ledger)
        eps = self.ledger.epsilon()
        return ledger_claim(self.name, self.ledger, None,
                            f"{eps:.4g}-label-DP for the whole transcript: every training label is randomised "
                            f"once by {self.name} and the label party uses only the randomised labels",
                            **self.report)


@LABEL_DEFENSES.register("rr")
class RandomizedResponse(_ClassLabelDefense):
    """k-ary randomised response (binary: flip with probability 1/(1 + e^eps)): eps-DP."""

    summary = "k-ary randomised response on class labels (binary: flip with 1/(1 + e^eps)): eps-label-DP."
    audit_law = "rr"  # one canary's release is RR at eps, binary or k-ary (fedsim.audit.ideal)

    @classmethod
    def from_config(cls, task: str, epsilon: float | None, delta: float | None, params: dict) -> RandomizedResponse:
        cls.check_task(task)
        cls.read_params(params)
        return cls(check_epsilon(epsilon))

    def apply(self, y: np.ndarray, task: str, rng: np.random.Generator) -> np.ndarray:
        k = class_count(y, task)
        self.ledger.randomized_response(self.epsilon, k, what="every label once")
        self.report.update(classes=k, keep_probability=rr_keep_probability(self.epsilon, k))
        return randomized_response(class_labels(y, k), self.epsilon, k, rng)


class RRWithPriorParams(PluginParams):
    stage1_fraction: Number = Field(0.7, gt=0, lt=1, description=(
        "Share of the training rows whose labels plain RR releases first (stage 1); the model trained on them "
        "gives the per-example prior of the rest."))
    stage1_epochs_fraction: Number = Field(0.3, gt=0, lt=1, description=(
        "Share of the training steps that train on the stage-1 rows alone; the stage-2 labels are released "
        "at that step and training continues on every row."))


@LABEL_DEFENSES.register("rr_with_prior")
class RRWithPrior(_ClassLabelDefense):
    """LP-2ST (module docstring): stage-1 rows by RR, stage-2 rows by RRTop-k* against the split model's
    per-example probabilities, each label once: eps-DP."""

    summary = ("Ghazi et al.'s LP-2ST: RR on a first share of the labels, RRTop-k against the split model's "
               "per-example prior on the rest: eps-label-DP.")
    Params = RRWithPriorParams

    def __init__(self, epsilon: float, stage1_fraction: float, stage1_epochs_fraction: float = 0.3) -> None:
        super().__init__(epsilon)
        self.stage1_fraction = stage1_fraction
        self.stage1_epochs_fraction = stage1_epochs_fraction
        self.releases = np.zeros(0, np.int64)  # per training row: how often its label was randomised
        self.stage2_rows = np.zeros(0, np.int64)  # positions of the rows released against the model's prior
        self._stage2: tuple[np.ndarray, np.ndarray, int, np.random.Generator] | None = None

    @classmethod
    def from_config(cls, task: str, epsilon: float | None, delta: float | None, params: dict) -> RRWithPrior:
        cls.check_task(task)
        p = cls.read_params(params)
        return cls(check_epsilon(epsilon), p.stage1_fraction, p.stage1_epochs_fraction)

    def apply(self, y: np.ndarray, task: str, rng: np.random.Generator) -> np.ndarray:
        """Stage 1: RR on the stage-1 rows; the stage-2 rows get placeholder 0 until `pending` releases them."""
        k = class_count(y, task)
        labels = class_labels(y, k)
        stage1 = rng.random(len(labels)) < self.stage1_fraction
        out = np.zeros_like(labels)
        out[stage1] = randomized_response(labels[stage1], self.epsilon, k, rng)
        self.releases = stage1.astype(np.int64)
        stage2 = self.stage2_rows = np.flatnonzero(~stage1)
        self._stage2 = (stage2, labels[stage2], k, rng)  # the label mechanism's stream continues in stage 2
        self.ledger.randomized_response(self.epsilon, k, what="every label once (stage 1: RR, stage 2: RRTop-k* "
                                                              "against the split model's per-example prior)")
        self.report.update(classes=k, stage1_fraction=self.stage1_fraction,
                           stage1_epochs_fraction=self.stage1_epochs_fraction, stage1_rows=int(stage1.sum()),
                           stage2_rows=len(stage2), prior_epsilon=0.0)
        return out

    def pending(self, plan: TrainingPlan) -> PendingLabels | None:
        """The stage-2 rows, released after `stage1_epochs_fraction` of the plan's steps (at least one step
        in each stage)."""
        check(self._stage2 is not None, "rr_with_prior: apply comes before pending")
        assert self._stage2 is not None
        rows = self._stage2[0]
        total = plan.epochs * plan.steps_per_epoch
        check(total >= 2, f"rr_with_prior trains in two stages of at least one step each: it needs >= 2 training "
                          f"steps (got {total}); raise --epochs or lower --batch-size")
        switch = min(max(round(self.stage1_epochs_fraction * total), 1), total - 1)
        at = divmod(switch, plan.steps_per_epoch)
        self.report.update(stage2_at_step=switch)
        return PendingLabels(rows, (int(at[0]), int(at[1])), self.release)

    def release(self, probabilities: np.ndarray) -> np.ndarray:
        """Stage 2: each stage-2 label by RRTop-k* against its own row of `probabilities` (n2, K), once."""
        check(self._stage2 is not None, "rr_with_prior: the stage-2 labels are released once, after apply")
        assert self._stage2 is not None
        rows, labels, k, rng = self._stage2
        priors = np.asarray(probabilities, float)
        check(priors.shape == (len(rows), k), f"rr_with_prior: the prior must be ({len(rows)}, {k}), "
                                               f"got {priors.shape}")
        self._stage2 = None
        self.releases[rows] += 1
        out = rr_with_prior(labels, priors, self.epsilon, rng)
        self.report.update(top_k_mean=float(top_k_sizes(priors, self.epsilon).mean()) if len(rows) else None)
        return out
