"""Randomised response for class labels: plain k-ary RR, and RR-with-prior (Ghazi et al., "Deep Learning
with Label Differential Privacy", NeurIPS 2021, arXiv 2102.06062).

RRTop-k against a prior p: Y_k = the k classes of largest prior mass. A label inside Y_k is kept with
probability e^eps/(e^eps + k - 1) and replaced by each other member of Y_k with probability
1/(e^eps + k - 1); a label outside Y_k becomes a uniform member of Y_k. Every output o in Y_k has
probability between 1/(e^eps + k - 1) and e^eps/(e^eps + k - 1) under every input (1/k lies between), so
the mechanism is eps-DP for any prior that does not depend on the label itself. RRWithPrior picks
k* = argmax_k e^eps/(e^eps + k - 1) * p(Y_k), the probability of emitting the true class.

The label party holds no features, so its prior is a global one: a random `stage1_fraction` of the
labels (default 0.3) goes through plain RR; the debiased class frequencies of those released labels are
the prior for RRWithPrior on the rest (the two-stage scheme of the paper, LP-2ST, with a constant prior).
Every label is randomised exactly once with an eps-DP mechanism whose parameters depend only on other
labels' releases, so the release is eps-DP (parallel composition + post-processing). The prior costs no
budget of its own: it is post-processing of the stage-1 releases, each made with the full eps (the report
gives its share of the labels, `stage1_fraction`, and `prior_epsilon` 0 on top of eps).

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
from fedsim.privacy.mechanisms import check_epsilon, randomized_response, rr_keep_probability, sample_transition
from fedsim.protocol import LabelTransform
from fedsim.registry import LABEL_DEFENSES


def class_count(y: np.ndarray, task: str) -> int:
    """K of the labels (module docstring): 2 for binary, max(label) + 1 for multiclass."""
    return 2 if task == "binary" else int(np.max(y)) + 1


def class_labels(y: np.ndarray, num_classes: int) -> np.ndarray:
    labels = np.asarray(y)
    check(np.all(labels == np.round(labels)) and labels.min() >= 0 and labels.max() < num_classes,
          f"randomised response needs class labels in 0..{num_classes - 1}")
    return labels.astype(np.int64)


def top_k_size(prior: np.ndarray, epsilon: float) -> int:
    """k* of RRWithPrior: the k maximising P(output = true label) = keep(k) * mass of the top k."""
    mass = np.cumsum(np.sort(np.asarray(prior, float))[::-1])
    gains = [rr_keep_probability(epsilon, k) * mass[k - 1] for k in range(1, len(mass) + 1)]
    return int(np.argmax(gains)) + 1


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


def rr_with_prior(labels: np.ndarray, prior: np.ndarray, epsilon: float, rng: np.random.Generator) -> np.ndarray:
    """Sample RRWithPrior for each label (eps-DP per label, see the module docstring)."""
    return sample_transition(rr_top_k_matrix(prior, epsilon), labels, rng)


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
    stage1_fraction: Number = Field(0.3, gt=0, lt=1, description="Share of labels released by plain RR (the prior).")


@LABEL_DEFENSES.register("rr_with_prior")
class RRWithPrior(_ClassLabelDefense):
    """Two-stage RR-with-prior with a global prior from the first stage's releases: eps-DP."""

    summary = "Ghazi et al.'s two-stage RR-with-prior (RRTop-k against a prior from stage 1): eps-label-DP."
    Params = RRWithPriorParams

    def __init__(self, epsilon: float, stage1_fraction: float) -> None:
        super().__init__(epsilon)
        self.stage1_fraction = stage1_fraction

    @classmethod
    def from_config(cls, task: str, epsilon: float | None, delta: float | None, params: dict) -> RRWithPrior:
        cls.check_task(task)
        p = cls.read_params(params)
        return cls(check_epsilon(epsilon), p.stage1_fraction)

    def apply(self, y: np.ndarray, task: str, rng: np.random.Generator) -> np.ndarray:
        k = class_count(y, task)
        labels = class_labels(y, k)
        stage1 = rng.random(len(labels)) < self.stage1_fraction
        out = np.empty_like(labels)
        out[stage1] = randomized_response(labels[stage1], self.epsilon, k, rng)
        keep = rr_keep_probability(self.epsilon, k)
        other = (1 - keep) / (k - 1)
        freq = np.bincount(out[stage1], minlength=k) / max(int(stage1.sum()), 1)
        prior = np.clip((freq - other) / (keep - other), 1e-6, None)  # debiased RR frequencies
        out[~stage1] = rr_with_prior(labels[~stage1], prior, self.epsilon, rng)
        self.ledger.randomized_response(self.epsilon, k, what="every label once (stage 1: RR, stage 2: RRTop-k*)")
        self.report.update(classes=k, prior=[float(v) for v in prior / prior.sum()],
                           top_k=top_k_size(prior, self.epsilon), stage1_fraction=self.stage1_fraction,
                           prior_epsilon=0.0)
        return out
