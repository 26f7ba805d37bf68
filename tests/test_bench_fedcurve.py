"""The FedCurve comparison's building blocks: exact curves from noise-free counts, FedCurve's histogram and
quantiles without noise, and the area error's definition."""

from __future__ import annotations

import numpy as np

from fedsim.evaluation import synthetic_scores
from fedsim.evaluation.mann_whitney import bucket_counts, bucket_edges
from fedsim.experiments.bench_fedcurve import (
    BRANCH,
    GRID_X,
    HEIGHT,
    area,
    fedcurve,
    hierarchical_histogram,
    ours_curves,
    quantile,
    truth,
)


def _scores(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = (rng.random(400) < 0.3).astype(np.int8)
    return 1.0 / (1.0 + np.exp(-(rng.standard_normal(400) + 1.5 * labels))), labels


def test_noise_free_counts_over_distinct_scores_give_the_exact_curves():
    scores, labels = _scores()
    exact = truth(scores, labels)
    edges = bucket_edges(scores, None)
    roc, pr = ours_curves(bucket_counts(scores[labels == 1], edges).astype(float),
                          bucket_counts(scores, edges))
    assert area(roc, exact.roc) < 1e-3
    assert area(pr, exact.pr) < 5e-3
    # and coarse buckets do not: the error measures something
    coarse = bucket_edges(scores, 3)
    roc3, pr3 = ours_curves(bucket_counts(scores[labels == 1], coarse).astype(float), bucket_counts(scores, coarse))
    assert area(roc3, exact.roc) > 0.01 and area(pr3, exact.pr) > 0.01


def test_area_is_the_integral_of_the_absolute_gap():
    assert abs(area(GRID_X, np.zeros_like(GRID_X)) - 0.5) < 1e-9
    assert abs(area(np.full_like(GRID_X, 0.25), np.full_like(GRID_X, 0.75)) - 0.5) < 1e-9


def test_hierarchical_histogram_without_noise_is_consistent_and_quantiles_hit_the_leaf_edge():
    scores, _ = _scores(1)
    hist = hierarchical_histogram(scores, 1e9, np.random.default_rng(0))  # eps / HEIGHT huge: noise 0
    assert len(hist) == HEIGHT + 1 and hist[0][0] == scores.size
    for level in range(1, HEIGHT):
        assert np.allclose(hist[level], hist[level + 1].reshape(-1, BRANCH).sum(axis=1))
    leaf = 1.0 / BRANCH**HEIGHT
    for q in (0.1, 0.5, 0.9):
        # FedCurve returns the lower edge of the leaf holding the q-quantile
        assert abs(quantile(hist, q) - np.floor(np.quantile(scores, q) / leaf) * leaf) <= leaf + 1e-12


def test_fedcurve_error_shrinks_with_epsilon_and_is_bias_limited():
    scores, labels = synthetic_scores("rare_positive", 0)
    exact = truth(scores, labels)
    low = fedcurve((scores, labels), 0.05, 20, 1, exact, lambda n: None)
    high = fedcurve((scores, labels), 1e6, 3, 1, exact, lambda n: None)
    assert np.mean([e.roc for e in high]) < np.mean([e.roc for e in low])
    assert np.mean([e.roc for e in high]) > 1e-3  # eight quantiles: a resolution error remains without noise
