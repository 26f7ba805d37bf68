"""The fixed scores an AUC cell evaluates: synthetic scores, or out-of-fold predictions of a simple model."""

from __future__ import annotations

import json
from functools import lru_cache

import numpy as np

from fedsim.data import load_table, read_table
from fedsim.errors import check
from fedsim.evaluation import synthetic_scores
from fedsim.streams import Stream

SCORE_SEED = 0  # the scores an AUC study evaluates are fixed; the cell's seed drives the mechanism's noise


@lru_cache(maxsize=8)
def auc_scores(source_json: str) -> tuple[np.ndarray, np.ndarray, str]:
    """Scores and labels an AUC cell evaluates (cached per process: every method sees the same scores).

    A synthetic source comes from `fedsim.evaluation.synthetic_scores`. A table gets out-of-fold
    predicted probabilities of a standardised logistic regression (5-fold cross-validation over all rows),
    so every row has a score from a model that never saw its label.
    """
    source = json.loads(source_json)
    if source.get("synthetic"):
        scores, labels = synthetic_scores(source["synthetic"], SCORE_SEED)
        return np.asarray(scores, dtype=np.float64), np.asarray(labels), f"synthetic_scores({source['synthetic']!r})"
    import pandas as pd
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if source.get("data"):
        features, target = read_table(source["data"], source["target"], None)
    else:
        rng = np.random.default_rng([SCORE_SEED, Stream.DATASET])
        features, target, _ = load_table(source["name"], rng, source.get("rows"))
    x = pd.get_dummies(features, dtype=np.float64).to_numpy(dtype=np.float64)
    y = np.asarray(target)
    check(set(np.unique(y)) <= {0, 1}, f"AUC source {source!r} needs 0/1 labels")
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    folds = StratifiedKFold(5, shuffle=True, random_state=SCORE_SEED)
    scores = cross_val_predict(model, x, y, cv=folds, method="predict_proba")[:, 1]
    return scores, y.astype(np.int64), "logistic regression, 5-fold out-of-fold probabilities"
