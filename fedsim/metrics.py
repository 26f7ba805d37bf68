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
