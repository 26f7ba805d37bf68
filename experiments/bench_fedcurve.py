"""FedCurve (Xu & Cormode, arXiv 2510.04979) and `fedsim auc --curves` side by side: ROC / PR area error
and AUC RMSE under label DP, over M clients and epsilon.

    python -m fedsim.experiments.bench_fedcurve [--releases 30] [--datasets breast_cancer criteo rare_positive]

Metrics (mean over `--releases` seeded releases per cell; the same exact curves for both methods):
- ROC area error = integral_0^1 |TPR_private(f) - TPR_exact(f)| df over the false-positive rate f;
- PR area error = integral_0^1 |precision_private(r) - precision_exact(r)| dr over the recall r;
- AUC RMSE = sqrt(mean (AUC_private - AUC_exact)^2).
The exact curves are scikit-learn's `roc_curve` / `precision_recall_curve` points joined by straight lines
(consecutive points in threshold order; vertical runs at one x have measure 0); the integrals are the
trapezoid rule on a grid of GRID points of [0, 1].

Ours (the release `fedsim auc --curves` post-processes; `fedsim.evaluation.curves.count_release`): noisy
per-bucket positive counts over B public score buckets (default B, or --buckets), equal-mass (`--bucketing
mass`, the default) or of equal s(1-s) weight (`--bucketing variance`), projected onto [0, n_b] (`--projection
box`) or isotonically (`isotonic`, the default); all four are shown.
M = 1 is the vertical setting (one label holder, method `hist`: Laplace(1/eps) per bucket); M > 1 is the
horizontal setting over secure aggregation (`--secure-aggregation`: each client adds a discrete-Laplace
share, the sum carries one). Between bucket boundaries the ROC is the straight line (the trapezoid, as the
AUC) and the PR curve the Davis-Goadrich interpolation (examples in a bucket enter in random order:
TP and FP grow linearly, precision = TP / (TP + FP)). Our AUC is the `estimate` `fedsim auc` prints: the
unclipped counts' bucketed Mann-Whitney, clipped to [0, 1]. M larger than n (breast_cancer: 285 rows) runs as
n clients of one row.

FedCurve, reimplemented from github.com/xuefeng-xu/fedcurve (commit d901b78; not on the package registry),
with its defaults (fedcurve/main.py: n_q = 8 quantiles, branch 2, height ceil(log2 n_q) + 2 = 5, discrete
noise, post-processing on, pchip interpolation, PR strategy "separate"):
- `fedhist_client` / `fedhist_server` (fedcurve/hist/fedhist.py): a hierarchical histogram of the positive
  scores and one of the negative scores over [0, 1], each level noised with a two-sided geometric of
  parameter eps / height; then weighted averaging and mean consistency;
- `HierarchicalHistogram.quantile` (fedcurve/hist/hierhist.py): n_q quantiles of each class;
- `roc_curve_approx` / `pr_curve_approx_separate` (fedcurve/approx.py) with `_piecewise` pchip
  (fedcurve/interp/piecewise.py): TPR, FPR as functions of the score, evaluated on 10^4 scores, the curve
  linear between them (`area_error_roc` / `area_error_pr`, fedcurve/error/area.py); its AUC is the area
  under that ROC, with `area_error_roc`'s fill of 0 / 1 beyond the FPRs reached.
Noise: the sum of M clients' Polya(1/M) differences is one two-sided geometric (their Theorem-5.1
reference), so the aggregate FedCurve sees has the same law for every M and the partition does not change
the summed histogram: FedCurve's numbers do not depend on M, and one set of releases serves every M. (Their
code seeds every client's noise with the same integer, so its M shares are identical and the sum has M times
the intended variance; we use the intended law, which favours FedCurve.)

Privacy. Ours is eps-label-DP (a label flip moves one positive count by 1; scores and bucket sizes public).
FedCurve's eps is for adding or removing one example: a label flip moves it from the negative to the positive
histogram at every level, so FedCurve run at eps is 2 eps-label-DP. The table gives FedCurve at equal label DP
(run at eps / 2) and, for reference, at its nominal eps (twice our guarantee).
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.interpolate import PchipInterpolator
from sklearn.metrics import precision_recall_curve, roc_curve

from fedsim.evaluation import synthetic_scores
from fedsim.evaluation.curves import Projection, count_release, project_counts
from fedsim.evaluation.driver import make_settings, owners, split_clients
from fedsim.evaluation.intervals import unit_estimate
from fedsim.evaluation.mann_whitney import bucketed_auc, exact_auc
from fedsim.progress import progress_bar

GRID = 4001  # integration grid on [0, 1]
SCORES = np.linspace(1.0, 0.0, 10_000)  # FedCurve's score grid (n_scores = 1e4)
N_Q, BRANCH = 8, 2
HEIGHT = math.ceil(math.log(N_Q, BRANCH)) + 2
DG_STEPS = 16  # points per bucket of the Davis-Goadrich PR interpolation
# our columns: (bucketing, projection); the same releases' counts under each projection
OURS: tuple[tuple[str, Projection], ...] = (("mass", "box"), ("mass", "isotonic"), ("variance", "box"),
                                            ("variance", "isotonic"))
OUR_BUCKETINGS = tuple(dict.fromkeys(b for b, _ in OURS))  # one set of releases each


@dataclass(frozen=True)
class Truth:
    """The exact curves on the integration grid and the exact AUC."""

    roc: np.ndarray
    pr: np.ndarray
    auc: float


@dataclass(frozen=True)
class Errors:
    """ROC area error, PR area error, AUC error of one release."""

    roc: float
    pr: float
    auc: float


GRID_X = np.linspace(0.0, 1.0, GRID)


def on_grid(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The polyline through (x, y) (x non-decreasing) at GRID_X; np.interp joins the last point at one x
    to the first at the next, which is the polyline."""
    order = np.argsort(x, kind="stable")
    return np.interp(GRID_X, x[order], y[order])


def area(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.trapezoid(np.abs(a - b), GRID_X))


def truth(scores: np.ndarray, labels: np.ndarray) -> Truth:
    fpr, tpr, _ = roc_curve(labels, scores)
    precision, recall, _ = precision_recall_curve(labels, scores)
    # scikit-learn lists the PR points by increasing threshold; by recall ascending = threshold descending
    return Truth(on_grid(fpr, tpr), on_grid(recall[::-1], precision[::-1]), exact_auc(scores, labels))


def ours_curves(counts: np.ndarray, sizes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ROC and PR on the grid from per-bucket counts (ascending score; feasible: 0 <= c_b <= n_b)."""
    c, n_b = counts[::-1], sizes[::-1].astype(np.float64)  # top bucket first
    tp = np.concatenate([[0.0], np.cumsum(c)])
    pp = np.concatenate([[0.0], np.cumsum(n_b)])
    positives, negatives = tp[-1], pp[-1] - tp[-1]
    roc = on_grid((pp - tp) / max(negatives, 1e-12), tp / max(positives, 1e-12))
    t = np.linspace(0.0, 1.0, DG_STEPS + 1)[1:]
    tp_in = tp[:-1, None] + t[None, :] * c[:, None]
    pp_in = pp[:-1, None] + t[None, :] * n_b[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(pp_in > 0, tp_in / pp_in, 1.0).ravel()
    recall = (tp_in / max(positives, 1e-12)).ravel()
    first = precision[0]  # recall 0: the top bucket's rate (the within-bucket order is unknown)
    return roc, on_grid(np.concatenate([[0.0], recall]), np.concatenate([[first], precision]))


def ours(dataset: tuple[np.ndarray, np.ndarray], clients: int, epsilon: float, buckets: int | None, releases: int,
         seed: int, exact: Truth, advance: Callable[[int], None]) -> dict[tuple[str, str], list[Errors]]:
    """Errors of every release for each (bucketing, projection) column (per bucketing the same releases:
    projection is post-processing)."""
    scores, labels = dataset
    parts = split_clients(scores, clients, "iid", seed)
    out: dict[tuple[str, str], list[Errors]] = {column: [] for column in OURS}
    for bucketing in OUR_BUCKETINGS:
        settings = make_settings("hist", epsilon, None, buckets, 100, bucketing=bucketing)
        for repeat in range(releases):
            release = count_release("hist", settings, scores, labels, parts, owners(parts, scores.size), seed,
                                    repeat, secure=clients > 1)
            auc_error = unit_estimate(bucketed_auc(release.noisy, release.sizes)) - exact.auc
            for column in (c for c in OURS if c[0] == bucketing):
                roc, pr = ours_curves(project_counts(release.noisy, release.sizes, column[1]), release.sizes)
                out[column].append(Errors(area(roc, exact.roc), area(pr, exact.pr), auc_error))
            advance(1)
    return out


def hierarchical_histogram(scores: np.ndarray, epsilon: float, rng: np.random.Generator) -> list[np.ndarray]:
    """`fedhist_client` + `fedhist_server` (DDP, discrete, post-processing) summed over the clients: levels
    1..HEIGHT each with a two-sided geometric of parameter eps / HEIGHT (the sum of the M Polya shares),
    weighted averaging bottom-up, mean consistency top-down, the root the sum of level 1."""
    p = 1.0 - math.exp(-epsilon / HEIGHT)
    hist = []
    for level in range(1, HEIGHT + 1):
        counts = np.histogram(scores, bins=np.linspace(0, 1, BRANCH**level + 1))[0].astype(np.float64)
        hist.append(counts + rng.negative_binomial(1.0, p, counts.size) - rng.negative_binomial(1.0, p, counts.size))
    for level in range(HEIGHT - 1, 0, -1):
        i = HEIGHT - level + 1
        scale = (BRANCH**i - BRANCH ** (i - 1)) / (BRANCH**i - 1)
        hist[level - 1] = scale * hist[level - 1] + (1 - scale) * hist[level].reshape(-1, BRANCH).sum(axis=1)
    for level in range(2, HEIGHT + 1):
        diff = (hist[level - 2] - hist[level - 1].reshape(-1, BRANCH).sum(axis=1)) / BRANCH
        hist[level - 1] = hist[level - 1] + np.repeat(diff, BRANCH)
    return [np.array([hist[0].sum()]), *hist]


def quantile(hist: list[np.ndarray], q_frac: float) -> float:
    """`HierarchicalHistogram.quantile`, line for line: descend the tree, skipping children while the
    cumulative noisy fraction stays below q_frac; the lower edge of the node reached."""
    tol = 1 / (2 * BRANCH**HEIGHT)
    lb, ub, q, idx = 0.0, 1.0, 0.0, 0
    for level in range(1, HEIGHT + 1):
        interval = (ub - lb) / BRANCH
        level_count = sum(hist[level])
        bin_frac = max(hist[level][idx] / level_count, 0.0)
        child_idx, max_idx = BRANCH * idx, idx + BRANCH - 1
        while q + bin_frac < q_frac and idx < max_idx:
            q += bin_frac
            child_idx += BRANCH
            idx += 1
            lb += interval
            bin_frac = max(hist[level][idx] / level_count, 0.0)
        ub = lb + interval
        idx = child_idx
        if abs(q_frac - q) < tol:
            break
    return lb


def piecewise(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """`_piecewise(x, y, "pchip", "desc")` of fedcurve/interp/piecewise.py evaluated on SCORES: pchip on each
    run of distinct x (repeated x split the segments), 1 below min x, 0 from max x on, clipped to [0, 1]."""
    edges, fits = [], []
    i = 0
    while i < len(x) - 1:
        while i < len(x) - 1 and x[i] == x[i + 1]:
            i += 1
        start = i
        if start == len(x) - 1:
            break
        i += 1
        while i < len(x) - 1 and x[i] != x[i + 1]:
            i += 1
        end = i + 1
        edges.append(x[end - 1])
        fits.append(PchipInterpolator(x[start:end], y[start:end]))
        i = end
    s = SCORES
    out = np.zeros_like(s)
    out[s < x.min()] = 1.0
    inside = (s >= x.min()) & (s < x.max())
    segment = np.minimum(np.searchsorted(edges, s[inside], side="right"), len(fits) - 1)
    values = np.empty(inside.sum())
    for j, fit in enumerate(fits):
        values[segment == j] = fit(s[inside][segment == j])
    out[inside] = np.clip(values, 0.0, 1.0)
    return out


def fedcurve(dataset: tuple[np.ndarray, np.ndarray], epsilon: float, releases: int, seed: int,
             exact: Truth, advance: Callable[[int], None]) -> list[Errors]:
    scores, labels = dataset
    positive, negative = scores[labels == 1], scores[labels == 0]
    q_frac = np.linspace(0, 1, N_Q)
    out = []
    for repeat in range(releases):
        rng = np.random.default_rng([seed, repeat])
        hist_pos, hist_neg = hierarchical_histogram(positive, epsilon, rng), hierarchical_histogram(negative,
                                                                                                    epsilon, rng)
        q_pos = np.array([quantile(hist_pos, q) for q in q_frac])
        q_neg = np.array([quantile(hist_neg, q) for q in q_frac])
        fpr = piecewise(q_neg, q_frac[::-1])  # roc_curve_approx: q_frac = linspace(1, 0, n_q)
        tpr = piecewise(q_pos, q_frac[::-1])
        fp, tp = fpr * hist_neg[0][0], tpr * hist_pos[0][0]  # precision_func_separate
        precision = np.ones_like(tp)
        np.divide(tp, fp + tp, out=precision, where=(fp + tp) != 0)
        roc = np.interp(GRID_X, *_sorted(fpr, tpr), left=0.0, right=1.0)  # area_error_roc's fill_value=(0, 1)
        # area_error_pr: pr_approx = interp1d(recall, precision, fill_value=(1, base rate))
        pr = np.interp(GRID_X, *_sorted(tpr, precision), left=1.0, right=labels.mean())
        # the area under the ROC that area_error_roc scores (auc_error_roc's sklearn auc of the 10^4 points alone
        # misses the curve past the largest FPR reached, e.g. 0.29 instead of 0.99 on breast_cancer)
        out.append(Errors(area(roc, exact.roc), area(pr, exact.pr), float(np.trapezoid(roc, GRID_X)) - exact.auc))
        advance(1)
    return out


def _sorted(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(x, kind="stable")
    return x[order], y[order]


def summary(errors: list[Errors]) -> tuple[float, float, float]:
    return (float(np.mean([e.roc for e in errors])), float(np.mean([e.pr for e in errors])),
            float(np.sqrt(np.mean([e.auc**2 for e in errors]))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--releases", type=int, default=30)
    parser.add_argument("--datasets", nargs="+", default=["breast_cancer", "criteo", "rare_positive"])
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 10, 1000])
    parser.add_argument("--epsilons", type=float, nargs="+", default=[0.5, 1.0, 2.0])
    parser.add_argument("--buckets", type=int, default=None,
                        help="Our B (default: fedsim's, chosen for the AUC; the PR curve of rare positives wants more)")
    args = parser.parse_args()
    sets = {name: synthetic_scores(name, 0) for name in args.datasets}
    total = args.releases * len(sets) * len(args.epsilons) * (len(OUR_BUCKETINGS) * len(args.clients) + 2)
    rows = []
    with progress_bar(total, "releases") as advance:
        for name, data in sets.items():
            exact = truth(*data)
            for epsilon in args.epsilons:
                equal = summary(fedcurve(data, epsilon / 2, args.releases, 1, exact, advance))
                nominal = summary(fedcurve(data, epsilon, args.releases, 1, exact, advance))
                for clients in args.clients:
                    m = min(clients, data[0].size)
                    mine = ours(data, m, epsilon, args.buckets, args.releases, 1, exact, advance)
                    shown = f"{m}" if m == clients else f"{m} (= n; {clients} asked)"
                    rows.append((name, shown, epsilon, *(summary(mine[c]) for c in OURS), equal, nominal))
    print(f"{args.releases} releases per cell, our B {args.buckets or 'default'}; eps-label-DP. FedCurve at eps/2 "
          "has the same label-DP guarantee as ours; FedCurve at eps is 2 eps-label-DP (shown for reference)")
    for index, metric in enumerate(("ROC area error (mean)", "PR area error (mean)", "AUC RMSE")):
        print(f"\n{metric}\n")
        ours_heads = " | ".join(f"ours ({projection}{', variance buckets' * (b == 'variance')})"
                                for b, projection in OURS)
        print(f"| set | M | eps | {ours_heads} | FedCurve | FedCurve at 2 eps |")
        print("| --- " * (5 + len(OURS)) + "|")
        for name, shown, epsilon, *values in rows:
            print(f"| {name} | {shown} | {epsilon:g} | " + " | ".join(f"{v[index]:.4f}" for v in values) + " |")

if __name__ == "__main__":
    main()
