"""`fedsim auc --curves --plot FILE.png`: the private ROC, PR and calibration curves with their pointwise 95%
bands, the exact curves over them when the truth is known (simulation), and eps, delta, n, B in the title."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def _array(values: list[float | None]) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype=np.float64)


def _band(curves: dict[str, Any], key: str) -> tuple[np.ndarray, np.ndarray] | None:
    band = curves.get(f"{key}_band")
    return None if band is None else (_array(band["low"]), _array(band["high"]))


def plot_curves(curves: dict[str, Any], title: str, path: Path) -> None:
    """Write the three panels to `path` (PNG); the file appears only once complete."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    exact = curves.get("exact")
    fig, (roc, pr, cal) = plt.subplots(1, 3, figsize=(15, 4.8))
    fpr, tpr = _array(curves["fpr"]), _array(curves["tpr"])
    roc.plot(fpr, tpr, "o-", ms=3, color="C0", label=f"private (AUC {curves['auc']:.3f})")
    band = _band(curves, "tpr")
    if band is not None:
        roc.fill_between(fpr, band[0], band[1], color="C0", alpha=0.2, label="95% band (TPR at each threshold)")
    if exact is not None:
        roc.plot(_array(exact["fpr"]), _array(exact["tpr"]), "k--", lw=1, label=f"exact (AUC {exact['auc']:.3f})")
    roc.plot([0, 1], [0, 1], ":", color="grey", lw=0.8)
    roc.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC", xlim=(0, 1), ylim=(0, 1.01))
    recall, precision = _array(curves["tpr"])[:-1], _array(curves["precision"])
    pr.plot(recall, precision, "o-", ms=3, color="C1", label=f"private (AP {curves['average_precision']:.3f})")
    band = _band(curves, "precision")
    if band is not None:
        pr.fill_between(recall, band[0], band[1], color="C1", alpha=0.2, label="95% band (precision)")
    if exact is not None:
        pr.plot(_array(exact["tpr"])[:-1], _array(exact["precision"]), "k--", lw=1,
                label=f"exact (AP {exact['average_precision']:.3f})")
    pr.set(xlabel="recall", ylabel="precision", title="precision-recall", xlim=(0, 1), ylim=(0, 1.01))
    mean_score, rate = _array(curves["bucket_mean_scores"]), _array(curves["calibration"])
    cal.plot(mean_score, rate, "o-", ms=3, color="C3", label=f"private (ECE {curves['ece']:.3f})")
    band = _band(curves, "calibration")
    if band is not None:
        cal.fill_between(mean_score, band[0], band[1], color="C3", alpha=0.2, label="95% band")
    if exact is not None:
        cal.plot(mean_score, _array(exact["calibration"]), "k--", lw=1, label=f"exact (ECE {exact['ece']:.3f})")
    cal.plot([0, 1], [0, 1], ":", color="grey", lw=0.8)
    cal.set(xlabel="mean score in bucket", ylabel="positive rate", title="calibration", ylim=(0, 1.01))
    for axis in (roc, pr, cal):
        axis.legend(loc="best", fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    temporary = path.with_name(path.name + ".tmp.png")
    fig.savefig(temporary, dpi=110)
    plt.close(fig)
    temporary.replace(path)
