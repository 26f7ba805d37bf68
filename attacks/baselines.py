"""Reference predictors for an attack's leakage: what the curious party gets without reading the transcript.

An attack's raw R² (or leak AUC) mixes two things: what the protocol leaks, and what the party's own features
and its known labels already say about the labels. The references separate them. Each one is fitted on the
known labels only and predicts every sample of the party:

| name | uses | available before training? |
| --- | --- | --- |
| `known_mean` | the known labels' mean (binary: their positive rate; multiclass: class frequencies) | yes |
| `features_ridge` | ridge (classification: logistic) regression on the party's own features | yes |
| `features_gbt` | gradient-boosted trees on the party's own features | yes |
| `embeddings_ridge` | ridge (classification: logistic) on the trained bottom model's embeddings | no |
| `model_completion` | the `model_completion` attack: an MLP top model on the embeddings | no |

The bottom model was trained with the label party's gradients, so the last two already hold protocol
leakage: they are shown, but the honest baseline is the best of the first three (`features_only`), what the
party could do without taking part in the protocol. `advantage` (fedsim.attacks.evaluate) is the attack's
metric minus that best.
Predictions are label values (regression), positive-class probabilities (binary) or (n, K) class
probabilities (multiclass; a class no known label has gets probability 0, except in `known_mean`'s smoothing).
The best is picked on the scored samples' truth, which favours the reference: the advantage is, if anything,
understated.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from fedsim.attacks.base import AttackerKnowledge
from fedsim.reference_fits import EMBEDDINGS, Reference, ReferenceInputs, fit_scikit_references
from fedsim.rundir import PartyView
from fedsim.streams import AttackStream, Stream

# The metric an attack's advantage is measured in, per task (higher = more leakage).
HEADLINE_METRIC = {"regression": "r2", "binary": "auc", "multiclass": "accuracy"}
MIN_KNOWN = 2  # below this no reference can be fitted
TASKS = ("regression", "binary", "multiclass")  # the tasks the references are built for


def references_apply(view: PartyView, knowledge: AttackerKnowledge) -> bool:
    """Whether any reference can be fitted: a task they are built for and at least two known labels."""
    return view.task in TASKS and len(knowledge.known_ids) >= MIN_KNOWN


def reference_inputs(view: PartyView, knowledge: AttackerKnowledge, features_only: bool = False) -> ReferenceInputs:
    """The arrays the scikit-learn references are fitted on (`features_only`: without the embeddings)."""
    return ReferenceInputs(view.task, int(view.n_classes), np.asarray(view.features, dtype=np.float64),
                           view.rows_of(np.asarray(knowledge.known_ids)),
                           np.asarray(knowledge.known_labels, dtype=np.float64),
                           None if features_only else view.embed().double().numpy())


def compute_references(view: PartyView, knowledge: AttackerKnowledge, seed: int = 0, features_only: bool = False,
                       advance: Callable[[int], None] | None = None,
                       fitted: Callable[[], list[Reference]] | None = None) -> list[Reference]:
    """Every reference fitted on the known labels (`features_only`: only those that need no transcript); none when
    `references_apply` is false. `advance(1)` is called as each one is fitted (a progress bar: the
    gradient-boosted trees and the model completion take seconds). `fitted`: the result of
    `fit_scikit_references` on `reference_inputs(view, knowledge, features_only)` computed elsewhere (a side
    process), instead of fitting them here."""
    if not references_apply(view, knowledge):
        return []
    if fitted is None:
        references = fit_scikit_references(reference_inputs(view, knowledge, features_only), seed, advance)
    else:
        references = fitted()
        if advance is not None:
            advance(len(references))
    if not features_only:
        references.append(Reference("model_completion", EMBEDDINGS, _model_completion(view, knowledge, seed)))
        if advance is not None:
            advance(1)
    return references


def reference_count(features_only: bool = False) -> int:
    """How many references `compute_references` fits (the length of its progress bar)."""
    return 3 if features_only else 5


def _model_completion(view: PartyView, knowledge: AttackerKnowledge, seed: int) -> np.ndarray:
    """The `model_completion` attack with its defaults, mapped back onto every row (known rows: their labels)."""
    from fedsim.attacks.model_completion import ModelCompletion

    rng = np.random.default_rng([seed, Stream.ATTACK, AttackStream.MODEL_COMPLETION])
    result = ModelCompletion().run(view, knowledge, rng)
    known_rows = view.rows_of(np.asarray(knowledge.known_ids))
    out: np.ndarray
    if view.task == "multiclass":
        out = np.zeros((len(view.sample_ids), int(view.n_classes)))
        out[known_rows, knowledge.known_labels.astype(np.int64)] = 1.0
    else:
        out = np.empty(len(view.sample_ids))
        out[known_rows] = knowledge.known_labels
    out[view.rows_of(np.asarray(result.ids))] = result.estimates
    return out
