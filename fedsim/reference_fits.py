"""The scikit-learn fits of the reference predictors (fedsim.attacks.baselines), in a module that imports no torch.

Importing scikit-learn costs about as much as importing torch (1-1.5 s on a 2-core machine), longer than an
attack on a small transcript. Keeping these fits torch-free lets `fedsim attack` run them in a side process
(`fedsim.side_process`) forked before torch loads, so the two imports and the attack share both cores. The
inputs are plain arrays (`ReferenceInputs`), so the fits give the same numbers in either process.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

KNOWN = "known labels"
FEATURES = "own features + known labels"
EMBEDDINGS = "trained bottom model + known labels"


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


@dataclass(frozen=True)
class ReferenceInputs:
    """What the scikit-learn references are fitted on: the party's features, optionally its trained bottom
    model's embeddings, and the known labels with their rows."""

    task: str
    n_classes: int
    features: np.ndarray  # (n, d) float64
    known_rows: np.ndarray
    y: np.ndarray  # the known labels, float64
    embeddings: np.ndarray | None = None  # (n, e) float64; None: features-only references


def fit_scikit_references(inputs: ReferenceInputs, seed: int,
                          advance: Callable[[int], None] | None = None) -> list[Reference]:
    """known_mean, features_ridge, features_gbt and (with embeddings) embeddings_ridge, in that order;
    `advance(1)` after each."""
    x, rows, y, k = inputs.features, inputs.known_rows, inputs.y, inputs.n_classes
    binary = inputs.task == "binary"
    steps: list[tuple[str, str, Callable[[], np.ndarray]]]
    if inputs.task == "multiclass":
        steps = [("known_mean", KNOWN, lambda: np.tile(class_frequencies(y, k), (len(x), 1))),
                 ("features_ridge", FEATURES, lambda: fit_class_probabilities(logistic_model(), x, rows, y, k)),
                 ("features_gbt", FEATURES, lambda: fit_class_probabilities(_boosted_classifier(seed), x, rows, y,
                                                                            k))]
    else:
        steps = [("known_mean", KNOWN, lambda: np.full(len(x), y.mean())),
                 ("features_ridge", FEATURES, lambda: _linear(x, rows, y, binary)),
                 ("features_gbt", FEATURES, lambda: _boosted_trees(x, rows, y, binary, seed))]
    embeddings = inputs.embeddings
    if embeddings is not None:
        steps.append(("embeddings_ridge", EMBEDDINGS, lambda: (
            fit_class_probabilities(logistic_model(), embeddings, rows, y, k) if inputs.task == "multiclass"
            else _linear(embeddings, rows, y, binary))))
    references = []
    for name, uses, predict in steps:
        references.append(Reference(name, uses, predict()))
        if advance is not None:
            advance(1)
    return references


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


def fit_class_probabilities(model: Any, x: np.ndarray, known_rows: np.ndarray, y: np.ndarray, k: int) -> np.ndarray:
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
