"""Test-inversion intervals for the bucketed AUC: they agree with a brute-force scan and hold where the delta
method does not (rare positives, high AUC, heavy noise)."""

from __future__ import annotations

import numpy as np
import pytest

from fedsim.evaluation import exact_auc, synthetic_scores
from fedsim.evaluation.intervals import Z95, accepted_hull, ratio_interval, unit_estimate, unit_interval
from fedsim.evaluation.mann_whitney import bucket_counts, bucket_edges, delta_method_ci
from fedsim.privacy.mechanisms import debias_rr_counts, rr_flip_probability


def scanned(counts: np.ndarray, sizes: np.ndarray, variances: np.ndarray) -> tuple[float, float] | None:
    """The same acceptance rule on a grid of theta, written out term by term."""
    thetas = np.linspace(0, 1, 20001)
    negatives = sizes - counts
    below = np.cumsum(negatives) - negatives
    above = counts.sum() - np.cumsum(counts)
    total = variances.sum()
    statistic = (np.sum(counts * (below + negatives / 2)) + total / 2) - thetas * (
        counts.sum() * negatives.sum() + total)
    gradient_s = below + (negatives - counts) / 2 - above
    gradient_d = negatives.sum() - counts.sum()
    variance = (np.sum(gradient_s**2 * variances) - 2 * thetas * gradient_d * np.sum(gradient_s * variances)
                + thetas**2 * gradient_d**2 * total)
    ok = statistic**2 <= Z95**2 * variance
    return (thetas[ok].min(), thetas[ok].max()) if ok.any() else None


def rr_release(scores, labels, epsilon, rng):
    edges = bucket_edges(scores, None)
    sizes = bucket_counts(scores, edges).astype(float)
    flipped = np.where(rng.random(labels.size) < rr_flip_probability(epsilon), 1 - labels, labels)
    noisy = np.bincount(np.searchsorted(edges, scores), weights=flipped, minlength=edges.size)
    p = rr_flip_probability(epsilon)
    return debias_rr_counts(noisy, sizes, epsilon), sizes, sizes * p * (1 - p) / (1 - 2 * p) ** 2


def test_matches_a_brute_force_scan() -> None:
    scores, labels = synthetic_scores("rare_positive", 0)
    rng = np.random.default_rng(4)
    for epsilon in (0.5, 1.0, 4.0):
        for _ in range(20):
            counts, sizes, variances = rr_release(scores, labels, epsilon, rng)
            reference = scanned(counts, sizes, variances)
            if reference is not None:
                assert ratio_interval(counts, sizes, variances) == pytest.approx(reference, abs=1e-4)


@pytest.mark.parametrize("epsilon", [0.5, 1.0])
def test_holds_on_rare_positives_where_the_delta_method_fails(epsilon) -> None:
    """rr on 5,000 scores, 165 positives, AUC ~0.95: test inversion covers >= 0.92, the delta method did not."""
    scores, labels = synthetic_scores("rare_positive", 0)
    exact = exact_auc(scores, labels)
    rng = np.random.default_rng(3)
    hits = {"inversion": 0, "delta": 0}
    for _ in range(300):
        counts, sizes, variances = rr_release(scores, labels, epsilon, rng)
        low, high = ratio_interval(counts, sizes, variances)
        hits["inversion"] += low <= exact <= high
        low, high = delta_method_ci(counts, sizes, variances)
        hits["delta"] += low <= exact <= high
    assert 0.92 <= hits["inversion"] / 300 <= 0.99
    assert hits["delta"] / 300 < 0.92


def test_hull_cases() -> None:
    assert accepted_hull(1.0, 0.5, 0.24, 0.01) == pytest.approx((0.4, 0.6))  # (t - 0.4)(t - 0.6) <= 0
    assert accepted_hull(1.0, 0.5, 0.26, -0.01) is None  # no real root, opens upwards: empty
    assert accepted_hull(-1.0, -0.5, -0.24, 0.01) == (0.0, 1.0)  # outside (0.4, 0.6): hull is [0, 1]
    assert unit_estimate(1.7) == 1.0 and unit_estimate(-0.2) == 0.0 and unit_interval((-1.0, 0.5)) == (0.0, 0.5)
