"""Main-task and attack metrics (scikit-learn and scipy as references)."""

from __future__ import annotations

import math

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


def top_k(n_classes: int) -> int:
    """The k of `top_k_accuracy`: 3, or K - 1 for fewer than four classes (top-K of K classes is always 1)."""
    return max(1, min(3, n_classes - 1))


def class_indices(estimates: np.ndarray) -> np.ndarray:
    """Class indices from (n,) indices or (n, K) class scores (the arg-max)."""
    estimates = np.asarray(estimates)
    return estimates.argmax(axis=1) if estimates.ndim == 2 else np.rint(estimates).astype(np.int64)


def multiclass_metrics(y_true: np.ndarray, estimates: np.ndarray) -> dict[str, float]:
    """Accuracy and macro F1 (over the classes that occur in the truth or the estimates) of class estimates:
    (n,) class indices or (n, K) class scores."""
    from sklearn.metrics import accuracy_score, f1_score

    y_true, y_pred = np.asarray(y_true).astype(np.int64), class_indices(estimates)
    return {"accuracy": float(accuracy_score(y_true, y_pred)),
            "macro_f1": float(f1_score(y_true, y_pred, average="macro", zero_division=0))}


def multiclass_task_metrics(y_true: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    """Main-task metrics of (n, K) class probabilities: accuracy, macro F1, top-k accuracy with
    k = `top_k(K)` (the true class among the k most probable) and log loss."""
    from sklearn.metrics import log_loss, top_k_accuracy_score

    proba = np.asarray(proba, dtype=np.float64)
    labels = np.arange(proba.shape[1])
    out = multiclass_metrics(y_true, proba)
    k = top_k(proba.shape[1])
    out["top_k_accuracy"] = (out["accuracy"] if k == 1 else
                             float(top_k_accuracy_score(y_true, proba, k=k, labels=labels)))
    clipped = np.clip(proba, 1e-7, 1.0)
    out["log_loss"] = float(log_loss(y_true, clipped / clipped.sum(axis=1, keepdims=True), labels=labels))
    return out


def matched_classes(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """`y_pred` relabelled by the one-to-one map of estimated to true classes that maximises the matches
    (Hungarian, scipy's linear_sum_assignment on the confusion counts): a fixed relabelling (CAE's, say) cannot
    hide a leak from it. An estimated class left unmapped (more estimated than true classes) keeps its index."""
    from scipy.optimize import linear_sum_assignment

    y_true, y_pred = np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)
    k = int(max(y_true.max(initial=0), y_pred.max(initial=0))) + 1
    counts = np.zeros((k, k))
    np.add.at(counts, (y_pred, y_true), 1)
    estimated, true = linear_sum_assignment(counts, maximize=True)
    mapping = np.arange(k)
    mapping[estimated] = true
    return mapping[y_pred]


def task_metrics(task: str, y_true: np.ndarray, prediction: np.ndarray) -> dict[str, float]:
    """Test metrics: regression mse, rmse, mae, r2; binary auc, accuracy, log_loss; multiclass accuracy,
    macro_f1, top_k_accuracy, log_loss (`prediction`: values, positive-class probabilities, (n, K) class
    probabilities)."""
    if task == "multiclass":
        return multiclass_task_metrics(y_true, prediction)
    return regression_metrics(y_true, prediction) if task == "regression" else binary_metrics(y_true, prediction)


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic)


def attack_metrics(task: str, y_true: np.ndarray, estimates: np.ndarray) -> dict[str, float]:
    """Attack scores on the attacked samples: regression mse, rmse, mae, r2, spearman; binary auc, accuracy;
    multiclass accuracy, macro_f1 (the leak on the unknown labels); classification adds the scores under the best
    one-to-one relabelling of the estimates (`matched_classes`): multiclass matched_accuracy, matched_macro_f1,
    binary matched_accuracy = max(acc, 1 - acc) and matched_auc = max(AUC, 1 - AUC).

    `estimates` are label values (regression), positive-class scores in [0, 1] (binary, >= 0.5 = positive),
    or class indices (n,) or class scores (n, K) (multiclass, the arg-max is the estimate).
    A metric that is undefined (e.g. Spearman of a constant guess) is left out.
    """
    y_true, estimates = np.asarray(y_true, dtype=np.float64), np.asarray(estimates, dtype=np.float64)
    if task == "multiclass":
        out = multiclass_metrics(y_true, estimates)
        matched = multiclass_metrics(y_true, matched_classes(y_true, class_indices(estimates)))
        out.update({f"matched_{k}": v for k, v in matched.items()})
    elif task == "regression":
        out = regression_metrics(y_true, estimates)
        if np.ptp(estimates) > 0 and np.ptp(y_true) > 0:
            out["spearman"] = spearman(y_true, estimates)
    else:
        out = binary_metrics(y_true, np.clip(estimates, 0.0, 1.0))
        out.pop("log_loss", None)
        out["matched_accuracy"] = max(out["accuracy"], 1.0 - out["accuracy"])
        if "auc" in out:
            out["matched_auc"] = max(out["auc"], 1.0 - out["auc"])
    return {k: v for k, v in out.items() if np.isfinite(v)}


DCS_BETA = 0.5  # VFLAIR's weight of the main-task term (the attack term gets 1 - beta)


def defense_capability_score(mp: float, ap: float, mp_ideal: float, ap_ideal: float = 0.0,
                             beta: float = DCS_BETA) -> float:
    """VFLAIR's Defense Capability Score of a defence against one attack, in (0, 1], higher is better.

    DCS = 1 / (1 + D), D = sqrt((1 - beta) * max(AP - AP*, 0)^2 + beta * max(MP* - MP, 0)^2), beta = 0.5,
    where MP is the main-task performance (test accuracy), AP the attack performance (label-recovery
    accuracy), and the ideal defence (AP*, MP*) = (0, MP of the same setting without defence).
    Source: Zou et al., "VFLAIR: A Research Library and Benchmark for Vertical Federated Learning"
    (ICLR 2024, arXiv:2310.09827), its definition of DCS, and the reference implementation,
    `cal_dcs(mp, ap, mp0, ap0=0, beta=0.5)` in FLAIR-THU/VFLAIR src/metrics/data_process.py, whose one-sided
    differences (an AP below AP* or an MP above MP* costs nothing) and ideal MP* = the undefended MP
    (not 1) are followed here, so the numbers are comparable with VFLAIR's tables. T-DCS (the mean over the
    attacks of one type) is the mean of these scores; here every attack is a label-inference attack.
    """
    distance = math.sqrt((1 - beta) * max(ap - ap_ideal, 0.0) ** 2 + beta * max(mp_ideal - mp, 0.0) ** 2)
    return 1.0 / (1.0 + distance)
