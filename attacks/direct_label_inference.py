"""Direct label inference from the sign pattern of the softmax cross-entropy cut gradient (Fu et al., 2022).

Under softmax cross-entropy with mean reduction, the gradient with respect to the logits z of one sample is
(1/B) (softmax(z) - onehot(y)): its only negative coordinate is the true class. What the feature party
receives is that vector pulled back through the top model, G = (1/B) J^T (softmax(z) - onehot(y)), J = dz/dh.

- `projection=none` reads B * G as the logit gradient and picks its most negative coordinate. Exact (every
  row, any training state) when J is the identity: the party's cut layer outputs K logits and the label
  party only aggregates them (sums the parties' logits, VFLAIR's model without a trainable top). Needs an
  embedding of width K.
- `projection=linear` first maps gradients to class scores with a linear map fitted on the known samples'
  rows (multinomial logistic regression). For a linear top model z = W h + ..., B G = W_a^T r with r the
  logit gradient and W_a the K x d block of the attacker's embedding: when W_a has rank K (d >= K) and stays
  fixed over the selected rows, (W_a^T)^+ recovers r exactly, so the classes are linearly separable in
  gradient space and a linear map with zero error exists; the fitted one approaches it with enough known
  labels. For a drifting or non-linear (MLP) top model it is a heuristic, no more.
- `projection=auto`: none when the embedding has width K, else linear.

Scores are averaged over a sample's rows in the selected epochs; the estimate is the (n, K) score matrix.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from pydantic import Field

from fedsim.attacks.base import Attack, AttackerKnowledge, AttackResult
from fedsim.attacks.observations import EpochParams, Observations, Split, observe, split_known
from fedsim.attacks.scoring import per_sample
from fedsim.errors import check
from fedsim.registry import ATTACKS
from fedsim.rundir import PartyView


class DirectParams(EpochParams):
    projection: Literal["auto", "none", "linear"] = Field(
        "auto", description="Gradient to logit-gradient map: none (identity top), linear (fitted on known labels).")


def linear_projection(obs: Observations, split: Split, k: int, rows: torch.Tensor) -> torch.Tensor:
    """Class probabilities of `rows` from a multinomial logistic regression of the class on B * G, fitted on
    the known samples' rows."""
    from sklearn.linear_model import LogisticRegression

    scaled = (obs.g.double() / obs.inv_b.double()[:, None]).numpy()
    known_rows = np.isin(obs.sample.numpy(), split.known)
    labels = np.zeros(len(obs.table), dtype=np.int64)
    labels[split.known] = split.known_labels.astype(np.int64)
    y = labels[obs.sample.numpy()[known_rows]]
    check(len(np.unique(y)) >= 2, "direct_label_inference with projection=linear needs known labels of at "
                                  "least two classes")
    std = scaled[known_rows].std(axis=0) + 1e-12
    fit = LogisticRegression(C=100.0, max_iter=2000).fit(scaled[known_rows] / std, y)
    proba = np.zeros((len(rows), k))
    proba[:, fit.classes_] = fit.predict_proba(scaled[rows.numpy()] / std)
    return torch.from_numpy(proba)


@ATTACKS.register("direct_label_inference")
class DirectLabelInference(Attack[DirectParams]):
    summary = ("Sign of the softmax cut gradient (multiclass): exact for an identity/sum top on K-wide logits; "
               "projection=linear for a linear top.")
    tasks = ("multiclass",)
    needs_known_labels = False

    def run(self, view: PartyView, knowledge: AttackerKnowledge, rng: np.random.Generator) -> AttackResult:
        obs = observe(view, self.params.epochs)
        split = split_known(view, knowledge, view.task)
        k, d = int(view.n_classes), obs.g.shape[1]
        projection = self.params.projection
        if projection == "auto":
            projection = "none" if d == k else "linear"
        if projection == "none":
            check(d == k, f"direct_label_inference with projection=none needs an embedding of width K = {k} "
                          f"(the party's logits); this one has width {d}: use projection=linear")
            row_score = -obs.g.double() / obs.inv_b.double()[:, None]
        else:
            row_score = linear_projection(obs, split, k, torch.arange(len(obs.g)))
        return AttackResult(view.sample_ids[split.unknown], per_sample(obs, row_score, split.unknown),
                            info={"epochs_used": obs.epochs_used, "projection": projection})
