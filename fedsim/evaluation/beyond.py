"""Metrics beyond AUC from the same label-DP releases (post-processing: no extra privacy cost).

- `threshold_metrics`: accuracy, precision, recall and F1 at a score threshold t (score >= t predicts
  positive) from per-bucket positive counts (true, de-biased RR or noisy histogram counts). Exact when t
  falls on a bucket boundary; the methods add the boundary max{s < t} to the public edges when a threshold
  is requested, so it always does.
- `laplace_mse`: for regression labels released as y + Laplace(b) (sensitivity = the label range), the MSE
  of predictions against the noisy labels minus the noise variance 2 b^2 is unbiased for the true MSE.
"""

from __future__ import annotations

import numpy as np

from fedsim.evaluation.mann_whitney import normal_ci
from fedsim.privacy.mechanisms import laplace_mechanism, laplace_scale


def threshold_edge(scores: np.ndarray, threshold: float) -> np.ndarray:
    """The bucket boundary that separates scores < t from scores >= t (empty when no score is below t)."""
    below = scores[scores < threshold]
    return below.max(keepdims=True) if below.size else np.empty(0)


def threshold_metrics(positives: np.ndarray, sizes: np.ndarray, edges: np.ndarray,
                      threshold: float) -> dict[str, float]:
    """Confusion-matrix metrics at t from bucket counts whose buckets do not straddle t."""
    predicted = edges >= threshold
    total_pos = float(np.sum(positives))
    tp = float(np.sum(positives[predicted]))
    fp = float(np.sum(sizes[predicted])) - tp
    fn = total_pos - tp
    tn = float(np.sum(sizes)) - tp - fp - fn
    return {"threshold": float(threshold), "accuracy": (tp + tn) / float(np.sum(sizes)),
            "precision": tp / (tp + fp) if tp + fp > 0 else 0.0, "recall": tp / total_pos if total_pos > 0 else 0.0,
            "f1": 2 * tp / (2 * tp + fp + fn) if 2 * tp + fp + fn > 0 else 0.0}


def laplace_mse(predictions: np.ndarray, targets: np.ndarray, epsilon: float, label_range: float,
                rng: np.random.Generator) -> dict[str, float | list[float]]:
    """Release the targets with Laplace(range/eps) (eps-label-DP: one label moves by at most the range) and
    estimate the MSE as mean((yhat - y~)^2) - 2 b^2, which is unbiased since the noise is independent and
    zero-mean. 95% interval: Var = (4 mse 2b^2 + 20 b^4) / n per example (Laplace: E z^4 = 24 b^4)."""
    predictions = np.asarray(predictions, dtype=np.float64)
    noisy = laplace_mechanism(targets, label_range, epsilon, rng)
    noise_variance = 2.0 * laplace_scale(epsilon, label_range) ** 2
    estimate = float(np.mean((predictions - noisy) ** 2) - noise_variance)
    variance = (4.0 * max(estimate, 0.0) * noise_variance + 5.0 * noise_variance**2) / predictions.size
    return {"estimate": estimate, "ci95": list(normal_ci(estimate, variance)), "noise_variance": noise_variance}
