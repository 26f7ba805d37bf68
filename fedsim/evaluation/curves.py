"""ROC and PR curves, average precision, threshold metrics, calibration (ECE) and the Brier score from ONE
label-DP release of per-bucket positive counts, with pointwise intervals (post-processing: no extra epsilon).

The release is what `hist`, `hist_gauss` and the secure-aggregation histogram already send: noisy positive
counts c~_b = c_b + e_b per public score bucket b (sizes n_b public), where the noise e_b has a known law that
does not depend on the labels (a sum of Laplace / Gaussian draws over the clients reporting bucket b, or one
discrete Laplace / Skellam total under secure aggregation). Everything below is a function of (c~, public
data), so it costs no epsilon beyond the release's: `fedsim auc --curves` records one ledger entry, the same as
`fedsim auc`.

Thresholds are the bucket boundaries: point k (k = 0..B) predicts positive for buckets b >= k. At these
thresholds the curves are exact (no discretisation error): TP_k = sum_{b>=k} c_b, FP_k = n_{>=k} - TP_k,
TPR = TP/P, FPR = FP/N, precision = TP_k / n_{>=k}.

What each interval covers (the name says it; docs/private-evaluation.md):
- `average_precision_at_thresholds`: scikit-learn's step sum sum_b (c_b / P) precision_b at the released
  thresholds, i.e. `average_precision_score(labels, bucket index)`; scikit-learn's AP on the raw scores only
  with one bucket per distinct score. It is NOT widened to cover the raw-score AP, because no useful bound
  exists: inside a mixed bucket every order of the labels is possible, and the raw AP moves with it from
  below the bucketed value (positives last) to far above it (positives first). On `rare_positive` at B = 30
  the bucketed AP of the true counts is 0.391 and the raw one 0.523, but distinct within-bucket orders give
  0.281 (positives last) to 0.689 (positives first): an interval for the raw AP must span that before any
  noise, against [0.389, 0.463] for the bucketed AP in release 0 at eps 1 (`fedsim auc --synthetic
  rare_positive --method hist --epsilon 1 --curves`). So the release reports, and names, what it can bound.
  (The ROC AUC differs: its bucketing error is at most the tied-pair mass, small where buckets are nearly
  pure; `intervals.auc_interval`.)
- `tpr`, `fpr`, `precision`, `f1`: the exact values at those thresholds (no discretisation error there).
- `calibration`, `ece`: the reliability curve and ECE binned by the released buckets (equal-mass bins; ECE
  is defined only for a binning, and this is the one the release has): per bucket the positive rate c_b / n_b
  against the mean score s_b; ECE = sum_b |c_b - n_b s_b| / n.
- `brier`: scikit-learn's `brier_score_loss` on the raw scores. Brier = (sum_i s_i^2 + sum_i y_i (1 - 2 s_i))
  / n; its label-dependent part is approximated by sum_b c_b (1 - 2 s_b), whose error is
  -2 sum_{i in b} y_i (s_i - s_b): between -2 and +2 times the sum of the c_b highest / lowest deviations
  s_i - s_b of the bucket (public; 0 in a pure bucket and with one bucket per distinct score), and the
  interval is widened by that range (`brier_interval`), so it covers the raw Brier.

Consistency projection (`project_counts`). Feasible counts satisfy 0 <= c_b <= n_b, which is exactly what
makes both cumulative sums (TP and FP as the threshold falls) monotone; `box` is the Euclidean projection
onto that set (clipping). `isotonic` further projects the positive rates c_b / n_b, weighted by n_b, onto
non-decreasing sequences in [0, 1] (PAVA, scikit-learn's IsotonicRegression: the weighted-L2 projection of
the counts): a concave ROC and monotone calibration, the right shape for a score that ranks well, and an
assumption otherwise. Point estimates use the projected counts (curves inside [0, 1], monotone).

Intervals (`curve_intervals`). TPR, FPR and F1 are ratios of affine functions of the counts, and AP is one
after its bias correction: their bands invert a test whose statistic is the noise term alone (`ratio_bands`,
`average_precision_interval`; no linearisation of the ratio). Precision and the calibration rates are counts
over public sizes: their bands are the noise law's own quantiles (`public_denominator_bands`). The
Brier label part is affine in the counts, so its estimate's error is a function of the noise alone and the
noise law's quantiles give that part's interval up to Monte-Carlo error (`brier_interval`). ECE is not
smooth: |c_b - n_b s_b| makes the noisy ECE biased upwards where a bucket is calibrated, and a bootstrap does
not correct that (its band covered 0.945 on rare_positive but is not valid in general), so ECE's interval
(`ece_interval`) bounds that bias from the counts themselves: valid for every labelling, tight where the
gaps are large. Where a quantity is only partly identified by the counts (the Brier score's within-bucket
order) a valid interval covers more than 95% wherever the truth is not at an end of what the counts allow.
Coverage is measured by experiments/bench_eval_coverage.py.
Intervals are intersected with [0, 1] (the range of every quantity): that never drops the truth.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from fedsim.errors import check
from fedsim.evaluation.dpauc import laplace_sum
from fedsim.evaluation.intervals import Z95, accepted_hull, auc_interval
from fedsim.evaluation.mann_whitney import bucketed_auc, exact_auc, mixed_buckets
from fedsim.evaluation.methods import METHODS, Public, Release, Settings, client_rng, sum_by_bucket
from fedsim.evaluation.secure_aggregation import SecurePublic, SecureRun, client_counts, secure_public, secure_sum
from fedsim.streams import AucStream

Projection = Literal["box", "isotonic"]
PROJECTIONS: tuple[str, ...] = ("box", "isotonic")
CURVE_METHODS = ("exact", "hist", "hist_gauss")
DRAWS = 2000  # noise draws for the intervals from quantiles: Monte-Carlo error of a 2.5% quantile ~ 0.35 points
NoiseDraw = Callable[[int, np.random.Generator], np.ndarray]  # (draws, rng) -> (draws, B) summed noise


@dataclass(frozen=True)
class CountRelease:
    """One release of noisy per-bucket positive counts and what is public about it."""

    edges: np.ndarray  # upper score edge of each bucket, ascending
    sizes: np.ndarray  # n_b
    noisy: np.ndarray  # c~_b (float)
    variances: np.ndarray  # variance of e_b
    draw: NoiseDraw  # samples of the summed noise law
    score_sums: np.ndarray  # sum of scores per bucket (public)
    deviation_sums: np.ndarray  # prefix sums of s_i - s_b, ascending within each bucket, buckets in order (public)
    positive_deviations: np.ndarray  # per bucket: how many s_i - s_b > 0 (public)
    score_squares: float  # sum_i s_i^2 (public)
    mixed: np.ndarray  # per bucket: holds several distinct scores (public)


def project_counts(counts: np.ndarray, sizes: np.ndarray, projection: Projection) -> np.ndarray:
    """The consistent counts nearest to `counts` (module docstring): in [0, n_b]; `isotonic` also makes the
    rates c_b / n_b non-decreasing in the score (weighted PAVA)."""
    check(projection in PROJECTIONS, f"unknown projection {projection!r}; valid: {', '.join(PROJECTIONS)}")
    sizes = np.asarray(sizes, dtype=np.float64)
    if projection == "box":
        return np.clip(counts, 0.0, sizes)
    from sklearn.isotonic import IsotonicRegression

    rates = np.asarray(counts, dtype=np.float64) / sizes
    fitted = IsotonicRegression(y_min=0.0, y_max=1.0).fit_transform(np.arange(rates.size), rates, sample_weight=sizes)
    return np.asarray(fitted) * sizes


def curve_metrics(counts: np.ndarray, release: CountRelease) -> dict[str, np.ndarray]:
    """Every curve quantity of count vectors `counts` (..., B), vectorised over leading axes (NaN where a
    denominator is 0)."""
    c = np.asarray(counts, dtype=np.float64)
    n_b = release.sizes.astype(np.float64)
    n = n_b.sum()
    # point k = 0..B predicts positive for buckets >= k; k = B predicts none
    tp = np.concatenate([np.cumsum(c[..., ::-1], axis=-1)[..., ::-1], np.zeros((*c.shape[:-1], 1))], axis=-1)
    predicted = np.concatenate([np.cumsum(n_b[::-1])[::-1], [0.0]])
    positives = tp[..., :1]
    with np.errstate(divide="ignore", invalid="ignore"):
        tpr = tp / positives
        fpr = (predicted - tp) / (n - positives)
        precision = tp[..., :-1] / predicted[:-1]
        f1 = 2.0 * tp / (predicted + positives)
        average_precision = np.sum(c * precision, axis=-1) / positives[..., 0]
        calibration = c / n_b
    label_part = np.sum(c * (1.0 - 2.0 * release.score_sums / n_b), axis=-1)
    return {"tpr": tpr, "fpr": fpr, "precision": precision, "f1": f1,
            "average_precision_at_thresholds": average_precision, "calibration": calibration,
            "ece": np.sum(np.abs(c - release.score_sums), axis=-1) / n,
            "brier": (release.score_squares + label_part) / n}


def _suffix(values: np.ndarray) -> np.ndarray:
    """Sums over the buckets b >= k for k = 0..B (the last, over none, is 0): point k's predicted positives."""
    return np.concatenate([np.cumsum(values[::-1])[::-1], [0.0]])


def linear_ratios(release: CountRelease, counts: np.ndarray) -> dict[str, tuple[np.ndarray, ...]]:
    """The quantities that are ratios of affine functions of the counts, theta_k = (A_k c + a_k) / (D_k c + d_k)
    (TPR, FPR and F1: noisy denominators), as the numerator A_k c + a_k, the denominator D_k c + d_k and, with
    v the noise variances, the sums (A_k * A_k) v, (A_k * D_k) v, (D_k * D_k) v. Every A_k is a multiple of
    the indicator of the buckets b >= k and every D_k of all buckets, so these are suffix sums: O(B), not
    B x B."""
    sizes, v = release.sizes.astype(np.float64), release.variances
    tp, predicted, above = _suffix(counts), _suffix(sizes), _suffix(v)
    positives, total, n = tp[0], above[0], predicted[0]  # the same sums, so TPR = 1 at point 0 exactly
    return {"tpr": (tp, np.full_like(tp, positives), above, above, np.full_like(tp, total)),
            "fpr": (predicted - tp, np.full_like(tp, n - positives), above, above, np.full_like(tp, total)),
            "f1": (2.0 * tp, predicted + positives, 4.0 * above, 2.0 * above, np.full_like(tp, total))}


def _nearest(numerator: float, denominator: float) -> tuple[float, float]:
    """When no theta passes the test the counts sit past the edge of [0, 1]: the nearest feasible value (a
    point; the release already counts as a miss at this level, so this changes no coverage), or [0, 1] when
    the denominator is 0."""
    if denominator == 0:
        return 0.0, 1.0
    value = float(np.clip(numerator / denominator, 0.0, 1.0))
    return value, value


def ratio_bands(release: CountRelease, z: float = Z95) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Fieller (test-inversion) 95% bands of every `linear_ratios` quantity: theta is kept when
    T(theta) = (A c~ + a) - theta (D c~ + d) satisfies T^2 <= z^2 Var T(theta), Var T = sum_b (A - theta D)_b^2 v_b.
    At the true theta, T is the noise term (A - theta D) e alone: zero-mean, label-free, of known variance,
    so the band holds exactly for Gaussian noise and to the normal approximation of a sum of Laplace /
    discrete-noise terms (0.937 for a single Laplace term; the quantities with a public denominator get the
    noise law's own quantiles instead: `public_denominator_bands`). No linearisation of the ratio (the
    delta method under-covers at rare positives; `fedsim.evaluation.intervals`). An empty set gives `_nearest`;
    a set of two rays (noise swamps the denominator) gives its hull [0, 1]."""
    bands = {}
    for key, (num, den, var_n, cov, var_d) in linear_ratios(release, release.noisy).items():
        if not release.variances.any():  # no noise: the value itself (0/0 stays NaN)
            with np.errstate(divide="ignore", invalid="ignore"):
                bands[key] = (num / den, num / den)
            continue
        q2, q1, q0 = den * den - z * z * var_d, num * den - z * z * cov, num * num - z * z * var_n
        hulls = [accepted_hull(*q, q[1] * q[1] - q[0] * q[2]) or _nearest(n, d)
                 for q, n, d in zip(zip(q2, q1, q0, strict=True), num, den, strict=True)]
        low, high = np.array(hulls).T
        bands[key] = (low, high)
    return bands


def average_precision_interval(release: CountRelease, z: float = Z95) -> tuple[float, float, float]:
    """Test-inversion 95% interval of AP = Q / P, Q = sum_b c_b TP_b / n_{>=b}: the same inequality as
    `ratio_bands` with T(theta) = Q~ - sum_b v_b / n_{>=b} - theta P~ (c~_b TP~_b carries e_b^2, whose mean
    v_b is subtracted, so E T = 0 at the true AP) and Var T linearised in Q only (the numerator is smooth;
    the ratio is not linearised). [0, 1] when no theta fits. Returns (estimate, low, high), the estimate being
    the same bias-corrected (Q~ - sum v_b / n_{>=b}) / P~ within [0, 1] (the projected counts' AP is biased by
    clipping at rare positives)."""
    c, v = release.noisy, release.variances
    predicted = np.cumsum(release.sizes[::-1].astype(np.float64))[::-1]
    tp = np.cumsum(c[::-1])[::-1]
    q = float(np.sum(c * tp / predicted) - np.sum(v / predicted))
    gradient = tp / predicted + np.cumsum(c / predicted)  # dQ/dc_j: its own term and every b <= j
    total = float(c.sum())
    var_q, cov, var_p = float(np.sum(gradient**2 * v)), float(np.sum(gradient * v)), float(v.sum())
    q2, q1, q0 = total * total - z * z * var_p, q * total - z * z * cov, q * q - z * z * var_q
    low, high = accepted_hull(q2, q1, q0, q1 * q1 - q2 * q0) or (0.0, 1.0)
    return (float(np.clip(q / total, 0.0, 1.0)) if total > 0 else math.nan), low, high


def curve_intervals(release: CountRelease, rng: np.random.Generator,
                    draws: int = DRAWS) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """95% intervals of every `curve_metrics` quantity within [0, 1] (module docstring); `draws` samples of
    the release's noise law serve every interval but the test-inverted ones (TPR, FPR, F1, AP)."""
    noise = release.draw(draws, rng)
    bands = ratio_bands(release)
    bands.update(public_denominator_bands(release, noise))
    _, low, high = average_precision_interval(release)
    bands["average_precision_at_thresholds"] = (np.array(low), np.array(high))
    box = noise_box(release, noise)  # one confidence box of the counts for both
    bands["brier"] = brier_interval(release, noise, box)
    bands["ece"] = ece_interval(release, noise, box)
    return bands


def public_denominator_bands(release: CountRelease, noise: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """95% bands of the quantities whose denominator is public, theta_k = (W_k c) / d_k: the calibration rates
    c_b / n_b and precision TP_k / n_{>=k}. Their error is (W_k e) / d_k whatever the labels, so the band is
    [W_k c~ - q97.5_k, W_k c~ - q2.5_k] / d_k with the quantiles of W_k e under the release's noise law (`noise`:
    draws of it; the next draw outward, so the integer laws cover at least 95%: 0.973 for one discrete Laplace
    term at eps 1, the next value up). A +-1.96 sd band covers a single Laplace term 0.937 and a discrete
    Laplace one 0.927: the calibration rates and the top thresholds' precision are one or a few terms."""
    def suffix(values: np.ndarray) -> np.ndarray:  # sums over buckets b >= k, along the last axis
        return np.cumsum(values[..., ::-1], axis=-1)[..., ::-1]

    sizes = release.sizes.astype(np.float64)
    bands = {}
    for key, sums in (("calibration", lambda values: values), ("precision", suffix)):
        errors = sums(noise)
        below = np.quantile(errors, 0.025, axis=0, method="lower")
        above = np.quantile(errors, 0.975, axis=0, method="higher")
        value, denominators = sums(release.noisy), sums(sizes)
        bands[key] = (np.clip((value - above) / denominators, 0.0, 1.0),
                      np.clip((value - below) / denominators, 0.0, 1.0))
    return bands


BRIER_NOISE_MISS, BOX_MISS = 0.045, 0.005  # Brier's 5%: its noise term, and the count box it shares with ECE


def noise_box(release: CountRelease, noise: np.ndarray, miss: float = BOX_MISS) -> np.ndarray:
    """Per-bucket radii t_b with P(|e_b| <= t_b for every b) = 1 - `miss` under the release's noise law
    (`noise`: draws of it; t_b proportional to the noise's standard deviation): a confidence box for the
    true counts, c_b in c~_b -+ t_b."""
    spread = np.sqrt(np.maximum(release.variances, 1e-300))
    return float(np.quantile(np.max(np.abs(noise) / spread, axis=1), 1.0 - miss)) * spread


def brier_interval(release: CountRelease, noise: np.ndarray, box: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A 95% interval for the raw scores' Brier score that holds for every labelling.

    Brier = (sum_i s_i^2 + sum_b c_b w_b - 2 sum_b P_b) / n with w_b = 1 - 2 s_b and P_b the sum of
    s_i - s_b over bucket b's positives. The noisy estimate of the affine part has error eta = e.w / n whatever
    the labels (its law: `noise` @ w / n). P_b is not in the release, but with c_b positives it lies between
    minus the sum of the c_b lowest deviations and the sum of the c_b highest (`_top_sums`: every subset
    is possible, nothing narrower holds; 0 in a pure bucket), so the truth lies in [A - a, A + b] with A the
    affine part and a + b = W the width of that range. On the event that every c_b is in its `noise_box`
    (all but BOX_MISS) the most a and b can be over the box widen each side, and the least W can be, W_low,
    sets the noise margin q (Imbens & Manski 2004): the truth at A - a + u (u in [0, W]) is missed with
    probability P(eta > q + u) + P(eta < -q - W + u), largest at an end of the range for a symmetric
    unimodal eta (weighted sums of Laplace or Gaussian draws are; the integer laws of secure aggregation are on
    their lattice), so q solves P(eta > q) + P(eta < -q - W_low) = BRIER_NOISE_MISS: one-sided where the range
    is wide, two-sided where it is empty. The interval covers about 95% when the positives are the highest or the
    lowest scores of every mixed bucket and covers more elsewhere, as any interval valid for every
    within-bucket order must. `box`: the `noise_box` radii."""
    n = float(release.sizes.sum())
    sizes = release.sizes
    errors = np.sort(noise @ (1.0 - 2.0 * release.score_sums / sizes) / n)
    point = float(curve_metrics(release.noisy, release)["brier"])
    lowest = np.clip(np.ceil(release.noisy - box - 1e-9), 0, sizes).astype(np.int64)
    highest = np.clip(np.floor(release.noisy + box + 1e-9), 0, sizes).astype(np.int64)
    lowest, highest = np.minimum(lowest, highest), np.maximum(lowest, highest)
    # T(k), the sum of a bucket's k highest deviations, is concave in k with its peak at the positive ones: its
    # most over [lo, hi] is at the clipped peak; T(k) + T(n_b - k), also concave, is least at an end
    peak = release.positive_deviations
    most_above = _top_sums(release, np.clip(peak, lowest, highest)).sum()
    most_below = _top_sums(release, np.clip(peak, sizes - highest, sizes - lowest)).sum()
    least_width = np.minimum(*(_top_sums(release, k) + _top_sums(release, sizes - k) for k in (lowest, highest)))
    margin = _range_margin(errors, 2.0 * float(least_width.sum()) / n, BRIER_NOISE_MISS)
    return (np.clip(np.asarray(point - margin - 2.0 * most_above / n), 0.0, 1.0),
            np.clip(np.asarray(point + margin + 2.0 * most_below / n), 0.0, 1.0))


def _top_sums(release: CountRelease, k: np.ndarray) -> np.ndarray:
    """Per bucket, the sum of its k_b highest deviations s_i - s_b (the last k_b of its ascending run)."""
    ends = np.cumsum(release.sizes)
    return release.deviation_sums[ends] - release.deviation_sums[ends - k]


def _range_margin(errors: np.ndarray, width: float, miss: float) -> float:
    """The least q >= 0 with P(eta > q) + P(eta < -q - width) <= miss and the mirror image, over sorted
    draws `errors` of eta (`brier_interval`)."""
    def missed(q: float) -> float:
        right = errors.size - np.searchsorted(errors, [q, q + width], "right")
        left = np.searchsorted(errors, [-q - width, -q], "left")
        return float(max(right[0] + left[0], left[1] + right[1])) / errors.size

    low, high = 0.0, float(np.abs(errors).max()) + 1e-12
    for _ in range(60):
        middle = 0.5 * (low + high)
        low, high = (low, middle) if missed(middle) <= miss else (middle, high)
    return high


ECE_MISS_ABOVE, ECE_MISS_BELOW = 0.025, 0.02  # with BOX_MISS, the 5% of `ece_interval`


def ece_interval(release: CountRelease, noise: np.ndarray, box: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A 95% interval for the ECE that holds for every labelling and is near 95% where buckets are clearly
    miscalibrated, from the raw noisy counts (`noise`: draws of the release's noise law e).

    With a_b = |c_b - m_b| (m_b = n_b s_b, public) the noisy statistic's error is
    err = n (ECE~ - ECE) = sum_b g(a_b, e_b), g(a, e) = |a + e| - a (sign of c_b - m_b absorbed: the law of e_b
    is symmetric). Two facts make a valid interval without knowing a:
    - g(a, e) >= e, so err >= sum_b e_b: ECE <= ECE~ + q / n with q the (1 - ECE_MISS_ABOVE) quantile of
      -sum_b e_b fails with probability at most ECE_MISS_ABOVE.
    - g is non-increasing in a for every e, so err's upper quantile u(a) grows as a shrinks. On the event A
      that every |e_b| <= t_b (`box`: the `noise_box` radii, all but BOX_MISS),
      L_b = max(|c~_b - m_b| - t_b, 0) <= a_b, so u(L) >= u(a), and ECE >= ECE~ - u(L) / n fails with
      probability at most BOX_MISS + ECE_MISS_BELOW.
    Where every bucket is calibrated (a = 0, the least favourable case: the noisy ECE is above the truth in
    every release and a bootstrap band covered 0.85) it covers about 0.98; where every gap is far above the
    noise it is the plain sum_b e_b interval, about 0.955. Quantiles are Monte-Carlo over `noise`."""
    n = float(release.sizes.sum())
    gaps = release.noisy - release.score_sums
    point = float(np.abs(gaps).sum()) / n
    floor = np.maximum(np.abs(gaps) - box, 0.0)
    below = float(np.quantile(np.sum(np.abs(floor + noise) - floor, axis=1), 1.0 - ECE_MISS_BELOW)) / n
    above = float(np.quantile(-noise.sum(axis=1), 1.0 - ECE_MISS_ABOVE)) / n
    return np.clip(np.asarray(point - below), 0.0, 1.0), np.clip(np.asarray(point + above), 0.0, 1.0)


def _laplace_draw(reporters: np.ndarray, scale: float) -> NoiseDraw:
    return lambda draws, rng: laplace_sum((draws, reporters.size), reporters, scale, rng)


def _gaussian_draw(reporters: np.ndarray, sigma: float) -> NoiseDraw:
    return lambda draws, rng: rng.normal(0.0, sigma * np.sqrt(reporters), size=(draws, reporters.size))


def _integer_total_draw(kind: str, parameter: float, share: float, size: int) -> NoiseDraw:
    """The secure sum's noise: `share` central releases' worth of discrete Laplace (NB differences) or Skellam."""
    def draw(draws: int, rng: np.random.Generator) -> np.ndarray:
        shape = (draws, size)
        if kind == "discrete_laplace":
            p = 1.0 - parameter
            return (rng.negative_binomial(share, p, shape) - rng.negative_binomial(share, p, shape)).astype(float)
        return (rng.poisson(parameter * share, shape) - rng.poisson(parameter * share, shape)).astype(float)
    return draw


def _zero_draw(size: int) -> NoiseDraw:
    return lambda draws, rng: np.zeros((draws, size))


def _public_scores(scores: np.ndarray, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Per bucket the score sum; the prefix sums of the deviations from the bucket means (ascending within each
    bucket) and per bucket how many are positive; the sum of squares. Summed in score order, so the floats do
    not depend on how the clients' scores were concatenated (over Flower the server joins them by partition)."""
    scores = np.sort(np.asarray(scores, dtype=np.float64))
    bucket = np.searchsorted(edges, scores, "left")
    sizes = np.bincount(bucket, minlength=edges.size)
    sums = np.bincount(bucket, weights=scores, minlength=edges.size)
    deviations = scores - (sums / np.maximum(sizes, 1))[bucket]
    positive = np.bincount(bucket, weights=deviations > 0, minlength=edges.size).astype(np.int64)
    return sums, np.concatenate([[0.0], np.cumsum(deviations)]), positive, float(np.sum(scores * scores))


def count_release(method: str, settings: Settings, scores: np.ndarray, labels: np.ndarray,
                  parts: list[np.ndarray], owner: np.ndarray | None, seed: int, repeat: int,
                  secure: bool = False, min_clients: int | None = None) -> CountRelease:
    """Release `repeat` of a bucket method, in process: exactly the counts `run_auc` estimates the AUC from
    (same streams)."""
    check_curve_method(method)
    if secure:
        public_s = secure_public(method, scores, settings.budget, settings.delta, settings.buckets, len(parts),
                                 min_clients, settings.bucketing)
        counts = [client_counts(scores[idx], labels[idx], public_s.edges) for idx in parts]
        total = secure_sum(counts, public_s, seed, repeat, list(range(len(parts))))
        return release_from_sum(public_s, np.sum([c.sizes for c in counts], axis=0), total, len(parts), scores)
    chosen = METHODS.get(method)
    public = chosen.public(scores, settings, owner)
    releases = [chosen.release(chosen.prepare(scores[idx], labels[idx], public), public,
                               client_rng(seed, repeat, c)) for c, idx in enumerate(parts)]
    return release_from_clients(method, public, releases, scores)


def check_curve_method(method: str) -> None:
    check(method in CURVE_METHODS, f"--curves needs a per-bucket count release ({', '.join(CURVE_METHODS)}); "
                                   f"{method} has none")


def release_from_clients(method: str, public: Public, releases: list[Release], scores: np.ndarray) -> CountRelease:
    """The server's `CountRelease` from the clients' per-bucket releases (computed in process or received over
    Flower) and the public scores."""
    chosen = METHODS.get(method)
    edges = public.edges
    sizes = sum_by_bucket(releases, "sizes", edges.size)
    reporters = np.bincount(np.concatenate([r["buckets"] for r in releases]), minlength=edges.size)
    noisy, variances = chosen.server_counts(sum_by_bucket(releases, "positives", edges.size), sizes, reporters,
                                            public)
    if public.noise == 0:
        draw = _zero_draw(edges.size)
    elif method == "hist":
        draw = _laplace_draw(reporters, public.noise)
    else:
        draw = _gaussian_draw(reporters, public.noise)
    return _count_release(edges, sizes, noisy, variances, draw, scores)


def secure_count_release(run: SecureRun) -> CountRelease:
    """The server's `CountRelease` of a secure run's release 0 (in process, over Flower or deployed); every
    client must have contributed (the curves need all bucket sizes and scores)."""
    check(run.contributors == run.public.clients, "--curves needs every client's bucket sizes: a client dropped out")
    return release_from_sum(run.public, run.first_sizes, run.first_total, run.contributors, run.scores)


def release_from_sum(public: SecurePublic, sizes: np.ndarray, total: np.ndarray, contributors: int,
                     scores: np.ndarray) -> CountRelease:
    """The server's `CountRelease` from the secure sum of `contributors` clients' counts + shares."""
    noise, edges = public.noise, public.edges
    variances = np.full(edges.size, noise.variance(contributors))
    draw = (_zero_draw(edges.size) if math.isinf(noise.epsilon) else
            _integer_total_draw(noise.kind, noise.parameter, contributors / noise.threshold, edges.size))
    return _count_release(edges, sizes, total, variances, draw, scores)


def _count_release(edges: np.ndarray, sizes: np.ndarray, noisy: np.ndarray, variances: np.ndarray, draw: NoiseDraw,
                   scores: np.ndarray) -> CountRelease:
    sums, deviation_sums, positive, squares = _public_scores(scores, edges)
    return CountRelease(edges, np.asarray(sizes).astype(np.int64), np.asarray(noisy, dtype=np.float64), variances,
                        draw, sums, deviation_sums, positive, squares, mixed_buckets(scores, edges))


def curve_rng(seed: int, repeat: int) -> np.random.Generator:
    """The stream of the curve intervals' noise draws (server side, no label information)."""
    return np.random.default_rng([seed, AucStream.CURVE_NOISE, repeat])


def _listed(values: np.ndarray) -> list[float | None]:
    return [None if math.isnan(v) else float(v) for v in np.asarray(values, dtype=np.float64)]


def curves_report(release: CountRelease, projection: Projection, rng: np.random.Generator,
                  labels_scores: tuple[np.ndarray, np.ndarray] | None = None,
                  threshold: float | None = None) -> dict[str, Any]:
    """The `curves` JSON block: projected estimates, pointwise 95% intervals, the AUC of
    the same release, and with the truth (simulation) the exact values at the same thresholds."""
    fitted = project_counts(release.noisy, release.sizes, projection)
    estimates = curve_metrics(fitted, release)
    corrected = average_precision_interval(release)[0]
    if not math.isnan(corrected):
        estimates["average_precision_at_thresholds"] = np.asarray(corrected)
    bands = curve_intervals(release, rng)
    # point k predicts "score > thresholds[k]"; point 0 (None) predicts every example positive
    out: dict[str, Any] = {"projection": projection, "thresholds": [None, *_listed(release.edges)],
                           "bucket_sizes": release.sizes.tolist(),
                           "bucket_mean_scores": _listed(release.score_sums / release.sizes)}
    for key, value in estimates.items():
        # the projection can carry an estimate past an interval built from the raw counts (a few releases in
        # 200); reporting the hull keeps every estimate inside its own interval, and a superset still holds
        low, high = np.fmin(bands[key][0], value), np.fmax(bands[key][1], value)
        if np.ndim(value) == 0:
            out[key] = float(value)
            out[f"{key}_ci95"] = [float(low), float(high)]
        else:
            out[key] = _listed(value)
            out[f"{key}_band"] = {"low": _listed(low), "high": _listed(high)}
    out["auc"] = bucketed_auc(release.noisy, release.sizes)
    out["auc_ci95"] = list(auc_interval(release.noisy, release.sizes, release.variances, release.mixed))
    if threshold is not None:
        k = int(np.searchsorted(release.edges, threshold, "left"))
        out["at_threshold"] = {"threshold": threshold, **{key: out[key][k] for key in ("precision", "tpr", "f1")
                                                          if k < len(out[key])}}
    if labels_scores is not None:
        scores, labels = labels_scores
        truth = exact_metrics(scores, labels, release)
        out["exact"] = {key: _listed(v) if np.ndim(v) else float(v) for key, v in truth.items()}
        out["exact"]["auc"] = exact_auc(scores, labels)
    return out


def exact_metrics(scores: np.ndarray, labels: np.ndarray, release: CountRelease) -> dict[str, np.ndarray]:
    """The simulation's truth of every quantity, as its interval means it (module docstring): the true
    counts' values at the release's thresholds and buckets, and the Brier score of the raw scores."""
    truth = curve_metrics(exact_counts(scores, labels, release.edges), release)
    truth["brier"] = np.asarray(np.mean((np.asarray(scores, dtype=np.float64) - labels) ** 2))
    return truth


def exact_counts(scores: np.ndarray, labels: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """True positives per bucket (the simulation's truth at the release's thresholds)."""
    bucket = np.searchsorted(edges, scores, "left")
    return np.bincount(bucket, weights=np.asarray(labels, dtype=np.float64), minlength=edges.size)
