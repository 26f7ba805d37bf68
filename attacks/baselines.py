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
from dataclasses import dataclass
from typing import Any

import numpy as np

from fedsim.attacks.base import AttackerKnowledge
from fedsim.rundir import PartyView
from fedsim.streams import AttackStream, Stream

# The metric an attack's advantage is measured in, per task (higher = more leakage).
HEADLINE_METRIC = {"regression": "r2", "binary": "auc", "multiclass": "accuracy"}
KNOWN = "known labels"
FEATURES = "own features + known labels"
EMBEDDINGS = "trained bottom model + known labels"
MIN_KNOWN = 2  # below this no reference can be fitted
TASKS = ("regression", "binary", "multiclass")  # the tasks the references are built for


@dataclass(frozen=True)
class Reference:
    """One reference predictor: its predictions for every row of the party's view (known rows included)."""

    name: str
    uses: str  # KNOWN, FEATURES or EMBEDDINGS
    predictions: np.ndarray

    @property
    def features_only(self) -> bool:
        """True when it needs nothing the party got from the protocol (the honest baseline of `advantage`)."""
        return self.uses != EMBEDDINGS


def compute_references(view: PartyView, knowledge: AttackerKnowledge, seed: int = 0, features_only: bool = False,
                       advance: Callable[[int], None] | None = None) -> list[Reference]:
    """Every reference fitted on the known labels (`features_only`: only those that need no transcript); none when
    fewer than two labels are known or the task is other. `advance(1)` is called as each one is fitted (a
    progress bar: the gradient-boosted trees and the model completion take seconds)."""
    if view.task not in TASKS or len(knowledge.known_ids) < MIN_KNOWN:
        return []
    known_rows = view.rows_of(np.asarray(knowledge.known_ids))
    y = np.asarray(knowledge.known_labels, dtype=np.float64)
    features = np.asarray(view.features, dtype=np.float64)
    binary = view.task == "binary"

    def fit(model: Any, x: np.ndarray) -> np.ndarray:
        return fit_class_probabilities(model, x, known_rows, y, int(view.n_classes))

    def embedded() -> np.ndarray:
        embeddings = view.embed().double().numpy()
        return (fit(logistic_model(), embeddings) if view.task == "multiclass" else
                _linear(embeddings, known_rows, y, binary))

    if view.task == "multiclass":
        steps: list[tuple[str, str, Callable[[], np.ndarray]]] = [
            ("known_mean", KNOWN, lambda: np.tile(class_frequencies(y, int(view.n_classes)), (len(features), 1))),
            ("features_ridge", FEATURES, lambda: fit(logistic_model(), features)),
            ("features_gbt", FEATURES, lambda: fit(_boosted_classifier(seed), features))]
    else:
        steps = [("known_mean", KNOWN, lambda: np.full(len(features), y.mean())),
                 ("features_ridge", FEATURES, lambda: _linear(features, known_rows, y, binary)),
                 ("features_gbt", FEATURES, lambda: _boosted_trees(features, known_rows, y, binary, seed))]
    if not features_only:
        steps += [("embeddings_ridge", EMBEDDINGS, embedded),
                  ("model_completion", EMBEDDINGS, lambda: _model_completion(view, knowledge, seed))]
    references = []
    for name, uses, predict in steps:
        references.append(Reference(name, uses, predict()))
        if advance is not None:
            advance(1)
    return references


def reference_count(features_only: bool = False) -> int:
    """How many references `compute_references` fits (the length of its progress bar)."""
    return 3 if features_only else 5


def class_frequencies(y: np.ndarray, k: int) -> np.ndarray:
    """The known labels' class frequencies, add-one smoothed (a class no known label has keeps some mass)."""
    counts = np.bincount(y.astype(np.int64), minlength=k).astype(np.float64) + 1.0
    return counts / counts.sum()


def logistic_model():
    """Standardised features, L2 logistic regression (C = 1): the `features_ridge` classifier."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=1000))


def _boosted_classifier(seed: int):
    from sklearn.ensemble import GradientBoostingClassifier

    return GradientBoostingClassifier(**_gbt_settings(seed))


def _gbt_settings(seed: int) -> dict:
    """Small gradient-boosted trees (single-threaded scikit-learn; depth 2, leaves of at least 3 samples)."""
    return {"n_estimators": 100, "max_depth": 2, "learning_rate": 0.1, "min_samples_leaf": 3,
            "subsample": 0.8, "random_state": seed}


def fit_class_probabilities(model, x: np.ndarray, known_rows: np.ndarray, y: np.ndarray, k: int) -> np.ndarray:
    """(n, K) class probabilities of a classifier fitted on the known rows; the class frequencies when the
    known labels hold a single class."""
    labels = y.astype(np.int64)
    if len(np.unique(labels)) < 2:
        return np.tile(class_frequencies(labels, k), (len(x), 1))
    fitted = model.fit(x[known_rows], labels)
    out = np.zeros((len(x), k))
    out[:, fitted.classes_] = fitted.predict_proba(x)
    return out


def _linear(x: np.ndarray, known_rows: np.ndarray, y: np.ndarray, binary: bool) -> np.ndarray:
    """Ridge with its penalty chosen by leave-one-out on the known labels; logistic regression for binary."""
    from sklearn.linear_model import RidgeCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if binary:
        if len(np.unique(y)) < 2:
            return np.full(len(x), y.mean())
        return logistic_model().fit(x[known_rows], y.astype(int)).predict_proba(x)[:, 1]
    model = make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-3, 3, 13)))
    return model.fit(x[known_rows], y).predict(x)


def _boosted_trees(x: np.ndarray, known_rows: np.ndarray, y: np.ndarray, binary: bool, seed: int) -> np.ndarray:
    """Gradient-boosted trees (`_gbt_settings`): classifier for binary, regressor otherwise."""
    from sklearn.ensemble import GradientBoostingRegressor

    if binary:
        if len(np.unique(y)) < 2:
            return np.full(len(x), y.mean())
        return _boosted_classifier(seed).fit(x[known_rows], y.astype(int)).predict_proba(x)[:, 1]
    return GradientBoostingRegressor(**_gbt_settings(seed)).fit(x[known_rows], y).predict(x)


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
