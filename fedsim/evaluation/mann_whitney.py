"""AUC arithmetic shared by every method: the exact Mann-Whitney AUC, public score buckets, the bucketed
Mann-Whitney formula for (possibly noisy) per-bucket positive counts, and its gradient for the delta method.

Buckets are intervals of the score, (edges[b-1], edges[b]] with edges ascending and edges[-1] the largest
score, so tied scores always share a bucket. They are computed from scores alone, which label DP treats as
public: edges and bucket sizes n_b may be known to everyone; only the positive counts c_b are private.

Products are summed with np.sum, not np.dot: a multi-threaded BLAS dot is 100x slower on a busy machine.
"""

from __future__ import annotations

import math

import numpy as np

from fedsim.errors import check

Z95 = 1.959963984540054  # the two-sided 95% normal quantile


def exact_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Mann-Whitney AUC with ties counted 1/2: P(s+ > s-) + P(s+ = s-)/2, O(n log n).

    For every positive, the negatives strictly below it and those below or tied are found by binary search
    in the sorted negatives; their sum is twice the U statistic. Sums are exact integers.
    """
    labels = np.asarray(labels).astype(bool, copy=False)
    positives, negatives = np.sort(scores[labels]), np.sort(scores[~labels])
    below = int(np.searchsorted(negatives, positives, "left").sum(dtype=np.int64))
    below_or_tied = int(np.searchsorted(negatives, positives, "right").sum(dtype=np.int64))
    return (below + below_or_tied) / (2.0 * positives.size * negatives.size)


BUCKETINGS = ("mass", "variance")
VARIANCE_FLOOR = 0.1  # share of the mean weight s(1 - s) every score keeps under `variance` bucketing


def bucket_edges(scores: np.ndarray, buckets: int | None, bucketing: str = "mass") -> np.ndarray:
    """Upper edges of `buckets` score buckets (fewer when scores tie); None: one per distinct score.

    `mass` (equal-mass quantile buckets): the k-th edge is the ceil(k n / B)-th smallest score, so each bucket
    holds about n / B examples. `variance`: buckets of equal weight w_i = s_i (1 - s_i) + VARIANCE_FLOOR *
    mean(s (1 - s)) for probability scores s in [0, 1]. Why: under calibrated scores s_i (1 - s_i) is the
    variance of example i's label, so a bucket's expected within-bucket mixing (its positive/negative pairs,
    the only source of bucketing error) follows that weight: scores sitting at 0 or 1 share a few large,
    nearly pure buckets (a few noise terms where the counts are all 0 or all n_b), and the mixed middle gets
    the resolution. The floor keeps every score range some buckets when scores are not calibrated. Edges use
    the scores alone (no labels): any bucketing is public and leaves the guarantee and the intervals as they
    are; only accuracy depends on how well the scores are calibrated (experiments/results/README.md).
    """
    ordered = np.sort(np.asarray(scores, dtype=np.float64))
    if buckets is None or buckets >= ordered.size:
        return np.unique(ordered)
    if bucketing == "mass":
        positions = np.ceil(np.arange(1, buckets + 1) * (ordered.size / buckets)).astype(np.int64) - 1
    else:
        check(bucketing == "variance", f"unknown bucketing {bucketing!r}; valid: {', '.join(BUCKETINGS)}")
        check(ordered[0] >= 0.0 and ordered[-1] <= 1.0, "--bucketing variance needs probability scores in [0, 1] "
              f"(found {ordered[0]:g} to {ordered[-1]:g}); use --bucketing mass")
        weight = ordered * (1.0 - ordered)
        floor = VARIANCE_FLOOR * weight.mean() if weight.any() else 1.0
        cumulative = np.cumsum(weight + floor)
        positions = np.searchsorted(cumulative, np.arange(1, buckets + 1) * (cumulative[-1] / buckets) * (1 - 1e-12))
    return np.unique(ordered[np.clip(positions, 0, ordered.size - 1)])


def bucket_counts(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """How many of `values` fall in each bucket (edges[b-1], edges[b]]; values must not exceed edges[-1]."""
    cumulative = np.searchsorted(np.sort(values), edges, "right")
    return np.diff(cumulative, prepend=0)


def mixed_buckets(scores: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Per bucket: does it hold more than one distinct score (public)? Only there can the bucketed AUC differ
    from the exact one: pairs with tied scores count 1/2 in both."""
    return bucket_counts(np.unique(np.asarray(scores, dtype=np.float64)), edges) > 1


def bucketed_auc(positives: np.ndarray, sizes: np.ndarray) -> float:
    """AUC from per-bucket positive counts c_b (floats allowed) and sizes n_b, buckets in ascending score.

    Mann-Whitney on buckets: pairs in different buckets are ordered by the bucket, pairs in one bucket count
    1/2, i.e. sum_b c_b (N_{<b} + q_b / 2) / (P N) with q_b = n_b - c_b. This is the trapezoid under the ROC
    through the bucket boundaries; with one bucket per distinct score it is the exact AUC. Returns 0.5
    when P N = 0 (no information).
    """
    positives = np.asarray(positives, dtype=np.float64)
    negatives = np.asarray(sizes, dtype=np.float64) - positives
    total_pos, total_neg = positives.sum(), negatives.sum()
    if total_pos * total_neg == 0:
        return 0.5
    below = np.cumsum(negatives) - negatives
    return float(np.sum(positives * (below + 0.5 * negatives)) / (total_pos * total_neg))


def bucketed_auc_gradient(positives: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """d bucketed_auc / d c_b (n_b fixed): the sensitivity of the estimate to each count, for the delta method.

    With S = sum_b c_b (N_{<b} + q_b/2): dS/dc_j = N_{<j} + (q_j - c_j)/2 - P_{>j}, and d(PN)/dc_j = N - P.
    """
    positives = np.asarray(positives, dtype=np.float64)
    negatives = np.asarray(sizes, dtype=np.float64) - positives
    total_pos, total_neg = positives.sum(), negatives.sum()
    if total_pos * total_neg == 0:
        return np.zeros_like(positives)
    below = np.cumsum(negatives) - negatives
    above = total_pos - np.cumsum(positives)
    auc = bucketed_auc(positives, sizes)
    d_numerator = below + 0.5 * (negatives - positives) - above
    return (d_numerator - auc * (total_neg - total_pos)) / (total_pos * total_neg)


def normal_ci(estimate: float, variance: float, z: float = Z95) -> tuple[float, float]:
    """Normal interval estimate +- z sqrt(variance) (95% by default)."""
    half = z * math.sqrt(variance)
    return estimate - half, estimate + half


def delta_method_ci(positives: np.ndarray, sizes: np.ndarray, variances: np.ndarray,
                    z: float = Z95) -> tuple[float, float]:
    """Normal interval (95% by default) of `bucketed_auc` when each count carries independent noise of variance v_b.

    Delta method: Var(AUC) ~ sum_b (d AUC / d c_b)^2 v_b, linearised at the observed counts.
    """
    gradient = bucketed_auc_gradient(positives, sizes)
    return normal_ci(bucketed_auc(positives, sizes), float(np.sum(gradient * gradient * variances)), z)
