"""Main-task and attack metrics (scikit-learn and scipy as references)."""

from __future__ import annotations

import numpy as np


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    mse = float(mean_squared_error(y_true, y_pred))
    return {
        "mse": mse,
        "rmse": float(np.sqrt(mse)),
        "mae": float(mean_absolute_error(y_true, y_pred)),
        "r2": float(r2_score(y_true, y_pred)),
    }


def binary_metrics(y_true: np.ndarray, score: np.ndarray) -> dict[str, float]:
    """`score` is the positive-class probability."""
    from sklearn.metrics import accuracy_score, log_loss, roc_auc_score

    out = {"accuracy": float(accuracy_score(y_true, score >= 0.5))}
    if len(np.unique(y_true)) == 2:
        out["auc"] = float(roc_auc_score(y_true, score))
        out["log_loss"] = float(log_loss(y_true, np.clip(score, 1e-7, 1 - 1e-7), labels=[0, 1]))
    return out


def task_metrics(task: str, y_true: np.ndarray, prediction: np.ndarray) -> dict[str, float]:
    return regression_metrics(y_true, prediction) if task == "regression" else binary_metrics(y_true, prediction)


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic)


def attack_metrics(task: str, y_true: np.ndarray, estimates: np.ndarray) -> dict[str, float]:
    """Attack scores on the attacked samples: regression mse, rmse, mae, r2, spearman; binary auc, accuracy.

    `estimates` are label values (regression) or positive-class scores in [0, 1] (binary, >= 0.5 = positive).
    A metric that is undefined (e.g. Spearman of a constant guess) is left out.
    """
    y_true, estimates = np.asarray(y_true, dtype=np.float64), np.asarray(estimates, dtype=np.float64)
    if task == "regression":
        out = regression_metrics(y_true, estimates)
        if np.ptp(estimates) > 0 and np.ptp(y_true) > 0:
            out["spearman"] = spearman(y_true, estimates)
    else:
        out = binary_metrics(y_true, np.clip(estimates, 0.0, 1.0))
        out.pop("log_loss", None)
    return {k: v for k, v in out.items() if np.isfinite(v)}
