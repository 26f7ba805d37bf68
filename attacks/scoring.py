"""Shared read-out of the scoring attacks: per-row scores averaged per sample over the selected epochs."""

from __future__ import annotations

import numpy as np
import torch

from fedsim.attacks.observations import Observations
from fedsim.errors import check


def per_sample(obs: Observations, row_score: torch.Tensor, samples: np.ndarray) -> np.ndarray:
    """Mean of each sample's row scores (R,) or score rows (R, K) over the selected epochs."""
    n = len(obs.table)
    total = torch.zeros((n, *row_score.shape[1:]), dtype=torch.float64).index_add_(0, obs.sample, row_score.double())
    count = torch.zeros(n, dtype=torch.float64).index_add_(0, obs.sample, torch.ones(len(obs.sample),
                                                                                      dtype=torch.float64))
    count = count.clamp_min(1).reshape(-1, *([1] * (row_score.dim() - 1)))
    return (total / count).numpy()[samples]


def class_posteriors(known_scores: np.ndarray, known_labels: np.ndarray, scores: np.ndarray, k: int) -> np.ndarray:
    """(n, K) class posteriors of one-dimensional scores under Gaussian class models fitted on the known samples
    (each class its mean, a pooled variance, its known frequency as prior; a class no known sample has gets
    the overall mean and a tiny prior). Needs known samples of at least two classes."""
    labels = known_labels.astype(np.int64)
    check(len(np.unique(labels)) >= 2, "this attack needs known labels of at least two classes")
    counts = np.bincount(labels, minlength=k).astype(float)
    means = np.array([known_scores[labels == c].mean() if counts[c] else known_scores.mean() for c in range(k)])
    var = max(float(np.mean((known_scores - means[labels]) ** 2)), 1e-12)
    log_post = -((scores[:, None] - means[None, :]) ** 2) / (2 * var) + np.log((counts + 1e-3) / counts.sum())
    log_post -= log_post.max(axis=1, keepdims=True)
    post = np.exp(log_post)
    return post / post.sum(axis=1, keepdims=True)
