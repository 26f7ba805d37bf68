"""`fedsim auc --curves --plot FILE.png`: the private ROC, PR and calibration curves with their pointwise 95%
bands, the exact curves over them when the truth is known (simulation), and eps, delta, n, B in the title."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def _array(values: list[float | None]) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype=np.float64)


def _band(curves: dict[str, Any], key: str) -> tuple[np.ndarray, np.ndarray]:
    band = curves[f"{key}_band"]
    return _array(band["low"]), _array(band["high"])


def _panel(axis: Any, curves: dict[str, Any], exact: dict[str, Any], keys: tuple[str, str, str], label: str,
           exact_label: str, color: str) -> None:
    """One curve (x, y) with the 95% band of `keys[2]` and, when known, the exact curve at the same thresholds."""
    x_key, y_key, band_key = keys
    y = _array(curves[y_key])
    x = _array(curves[x_key])[: y.size]
    axis.plot(x, y, "o-", ms=3, color=color, label=f"private ({label})")
    low, high = _band(curves, band_key)
    axis.fill_between(x, low, high, color=color, alpha=0.2, label="pointwise 95% band")
    if exact:
        source = curves if x_key == "bucket_mean_scores" else exact
        axis.plot(_array(source[x_key])[: y.size], _array(exact[y_key]), "k--", lw=1, label=f"exact ({exact_label})")


def plot_curves(curves: dict[str, Any], title: str, path: Path) -> None:
    """Write the three panels to `path` (PNG); the file appears only once complete."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    exact = curves.get("exact") or {}
    fig, (roc, pr, cal) = plt.subplots(1, 3, figsize=(15, 4.8))
    # the drawn curve comes from the projected counts, the AUC estimate from the raw ones (unbiased): both named
    fpr, tpr = _array(curves["fpr"]), _array(curves["tpr"])
    drawn = float(abs(np.trapezoid(tpr, fpr)))
    _panel(roc, curves, exact, ("fpr", "tpr", "tpr"), f"area {drawn:.3f}; AUC estimate {curves['auc']:.3f}",
           f"AUC {exact['auc']:.3f}" if exact else "", "C0")
    roc.plot([0, 1], [0, 1], ":", color="grey", lw=0.8)
    roc.set(xlabel="false positive rate", ylabel="true positive rate (band: at each threshold)", title="ROC",
            xlim=(0, 1), ylim=(0, 1.01))
    buckets = len(curves["bucket_sizes"])
    ap = "average_precision_at_thresholds"
    _panel(pr, curves, exact, ("tpr", "precision", "precision"), f"AP at the thresholds {curves[ap]:.3f}",
           f"AP at the thresholds {exact[ap]:.3f}" if exact else "", "C1")
    pr.set(xlabel="recall", ylabel="precision", title=f"precision-recall at {buckets} released thresholds",
           xlim=(0, 1), ylim=(0, 1.01))
    _panel(cal, curves, exact, ("bucket_mean_scores", "calibration", "calibration"), f"ECE {curves['ece']:.3f}",
           f"ECE {exact['ece']:.3f}" if exact else "", "C3")
    cal.plot([0, 1], [0, 1], ":", color="grey", lw=0.8)
    cal.set(xlabel="mean score in bucket", ylabel="positive rate",
            title=f"calibration over {buckets} released buckets", ylim=(0, 1.01))
    for axis in (roc, pr, cal):
        axis.legend(loc="best", fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    temporary = path.with_name(path.name + ".tmp.png")
    fig.savefig(temporary, dpi=110)
    plt.close(fig)
    temporary.replace(path)
