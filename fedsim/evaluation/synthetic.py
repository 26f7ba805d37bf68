"""Seeded score/label sets for private-evaluation experiments (no download needed).

- `criteo`: a stand-in for the DPAUC paper's Criteo test set (n = 458,407, 117,317 positives = 25.59%,
  exact AUC about 0.766): binormal scores z ~ N(d y, 1) with d = sqrt(2) Phi^-1(0.766), mapped into (0, 1)
  by a shifted sigmoid so that most scores lie below 0.5, as click-through scores do (this matters for
  DPAUC's threshold grid, which is denser below 0.2; the AUC itself is unchanged by the monotone map).
- `rare_positive`: 5,000 scores with 165 positives (3.3%), binormal with AUC about 0.95 (a good classifier
  of a rare event): de-biased counts are noisy relative to n+ and the delta method breaks down.
- `breast_cancer`: scikit-learn's 569-row set, a logistic regression fitted on a stratified half and
  scored on the other half (n = 285): the small-data case where label-DP AUC is hard.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from scipy.stats import norm

from fedsim.registry import Registry
from fedsim.streams import AucStream

SYNTHETIC: Registry[Callable[[int], tuple[np.ndarray, np.ndarray]]] = Registry("synthetic score set")

CRITEO_ROWS, CRITEO_POSITIVES, CRITEO_AUC = 458_407, 117_317, 0.766


def binormal(rows: int, positives: int, auc: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """`positives` random labels of `rows`; z ~ N(d y, 1) with d = sqrt(2) Phi^-1(auc); scores sigmoid(z - 1.5)."""
    labels = np.zeros(rows, dtype=np.int8)
    labels[rng.choice(rows, positives, replace=False)] = 1
    z = rng.standard_normal(rows) + math.sqrt(2.0) * norm.ppf(auc) * labels
    return 1.0 / (1.0 + np.exp(-(z - 1.5))), labels


@SYNTHETIC.register("criteo")
def criteo(seed: int) -> tuple[np.ndarray, np.ndarray]:
    return binormal(CRITEO_ROWS, CRITEO_POSITIVES, CRITEO_AUC, np.random.default_rng([seed, AucStream.CRITEO_SCORES]))


RARE_ROWS, RARE_POSITIVES, RARE_AUC = 5_000, 165, 0.95


@SYNTHETIC.register("rare_positive")
def rare_positive(seed: int) -> tuple[np.ndarray, np.ndarray]:
    return binormal(RARE_ROWS, RARE_POSITIVES, RARE_AUC, np.random.default_rng([seed, AucStream.RARE_POSITIVE_SCORES]))


@SYNTHETIC.register("breast_cancer")
def breast_cancer(seed: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    features, labels = load_breast_cancer(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(features, labels, test_size=0.5, stratify=labels,
                                                        random_state=seed)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(x_train, y_train)
    return model.predict_proba(x_test)[:, 1], y_test.astype(np.int8)


def synthetic_scores(name: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(scores, labels) of the named synthetic set; the same seed gives the same arrays."""
    return SYNTHETIC.get(name)(seed)
