"""scalar_laplace: the 1/L sensitivity bound by brute force, accuracy near the floor, an interval that holds."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from fedsim.evaluation import exact_auc, synthetic_scores
from fedsim.evaluation.scalar import Statistics, clamped_auc, scalar_laplace, statistics


def pair_w(scores: np.ndarray, labels: np.ndarray) -> float:
    """W straight from its definition: half the sum of sign(s_pos - s_neg) over all pairs."""
    return 0.5 * float(np.sign(scores[labels == 1][:, None] - scores[labels == 0][None, :]).sum())


@pytest.mark.parametrize("n", [2, 3, 5, 8, 9])
@pytest.mark.parametrize("ties", [False, True])
def test_clamped_auc_sensitivity_is_at_most_one_over_l(n, ties) -> None:
    """Every label vector of length n, every single flip, every floor L in [1, n/2]: |f_L - f_L'| <= 1/L."""
    scores = (np.arange(n) // 2 if ties else np.arange(n)).astype(float)
    vectors = [np.array(v, dtype=np.int8) for v in itertools.product([0, 1], repeat=n)]
    w = {v.tobytes(): pair_w(scores, v) for v in vectors}
    worst = 0.0
    for floor in range(1, n // 2 + 1):
        for labels in vectors:
            base = clamped_auc(w[labels.tobytes()], int(labels.sum()), n, floor)
            for i in range(n):
                flipped = labels.copy()
                flipped[i] ^= 1
                moved = clamped_auc(w[flipped.tobytes()], int(flipped.sum()), n, floor)
                worst = max(worst, abs(moved - base) * floor)
    assert worst <= 1.0 + 1e-12
    if n >= 5:
        assert worst > 0.5  # the bound is within 2x of the worst case here


def test_statistics_w_matches_pairs_and_equals_auc_when_unclamped() -> None:
    scores, labels = synthetic_scores("breast_cancer", 0)
    stats = statistics(scores, labels)
    assert stats.w == pytest.approx(pair_w(scores, labels), abs=1e-6)
    minority = min(stats.positives, stats.n - stats.positives)
    assert clamped_auc(stats.w, stats.positives, stats.n, minority) == pytest.approx(exact_auc(scores, labels))
    assert statistics(scores, np.zeros_like(labels)).w == 0.0


def releases(stats: Statistics, epsilon: float, count: int) -> tuple[np.ndarray, np.ndarray]:
    out = [scalar_laplace(stats, epsilon, np.random.default_rng([11, r])) for r in range(count)]
    return np.array([r.auc for r, _ in out]), np.array([ci for _, ci in out])


def test_criteo_rmse_within_twice_the_floor() -> None:
    """Goal of issue 12: RMSE <= 2 x sqrt(2)/(eps min(n+, n-)) (<= 2.5e-5 at eps 1) with a 95% interval."""
    scores, labels = synthetic_scores("criteo", 0)
    stats = statistics(scores, labels)
    exact = exact_auc(scores, labels)
    values, intervals = releases(stats, 1.0, 400)
    floor = math.sqrt(2) / min(stats.positives, stats.n - stats.positives)
    assert np.sqrt(np.mean((values - exact) ** 2)) <= 1.5 * floor
    assert 0.92 <= np.mean((intervals[:, 0] <= exact) & (exact <= intervals[:, 1])) <= 0.99


@pytest.mark.parametrize("epsilon", [1.0, 8.0])
def test_interval_covers_on_small_data(epsilon) -> None:
    scores, labels = synthetic_scores("breast_cancer", 0)
    exact = exact_auc(scores, labels)
    _, intervals = releases(statistics(scores, labels), epsilon, 400)
    assert np.all(intervals >= 0) and np.all(intervals <= 1)
    assert np.mean((intervals[:, 0] <= exact) & (exact <= intervals[:, 1])) >= 0.93


def test_no_noise_is_exact() -> None:
    scores, labels = synthetic_scores("breast_cancer", 0)
    release, interval = scalar_laplace(statistics(scores, labels), math.inf, np.random.default_rng(0))
    assert release.auc == pytest.approx(exact_auc(scores, labels)) and interval[0] == interval[1]
