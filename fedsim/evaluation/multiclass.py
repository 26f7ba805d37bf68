"""One-vs-rest macro AUC of K-class scores under label DP, from one private histogram release per class.

For class k the binary problem is (score column k, label == k); a bucket method (`hist`, `hist_gauss`, or the
non-private `exact`) runs its public / prepare / release / estimate steps on it unchanged (the machinery of
`fedsim.evaluation.methods`), and the macro AUC is the mean of the K one-vs-rest AUCs, as scikit-learn's
`roc_auc_score(multi_class="ovr", average="macro")` defines it.

Privacy (the whole K-histogram release, total epsilon; neither split by K nor composed K times):
neighbouring datasets differ in one example's label, say a -> b. Scores, hence every class's bucket edges and
bucket sizes, are public and unchanged. In the one-vs-rest label vectors only classes a (1 -> 0) and b (0 -> 1)
change, each in one position, so exactly two positive counts move, each by exactly 1, in two different
histograms; the other K - 2 histograms are identical. The concatenated release therefore has L1 sensitivity 2
and L2 sensitivity sqrt(2), whatever K is. `hist` adds Laplace(2/eps) to every count (Laplace mechanism at L1
sensitivity 2: eps-label-DP); `hist_gauss` adds N(0, (sqrt(2) sigma(eps, delta))^2) with sigma the analytic
Gaussian sigma at sensitivity 1 (Gaussian mechanism at L2 sensitivity sqrt(2): (eps, delta)-label-DP). The
per-class AUCs, their mean and its interval are post-processing. (Running the binary method per class at
eps/K would also be eps-DP by composition, but K/2 times noisier for K > 2.)

With M clients each client releases its own K histograms (local DP per client, as in the binary case).

Interval (`macro_estimate`): each class's error against its exact AUC has two parts, the noise (random,
independent across classes) and the bucketing error exact_k - bucketed_k (a fixed, label-dependent number,
at most M_k in size; `fedsim.evaluation.intervals`). The noise parts may combine in quadrature, the bucketing
errors may not: they are not zero-mean draws that cancel but worst-case terms that can all have the same
sign (nearly separable classes with few buckets: every mixed bucket orders its positives above its
negatives, every class's bucketed AUC falls short of its exact one by about M_k), so the quadrature half-width
sqrt(sum M_k^2) / K misses an error of sum M_k / K (sqrt(K) times more when the M_k are equal).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
from scipy.stats import norm

from fedsim.errors import UserError, check
from fedsim.evaluation.driver import check_counts, make_settings, owners, split_clients, summarise
from fedsim.evaluation.intervals import ALPHA_BOUND, Z95, Z_NOISE, ratio_interval, tied_mass_upper, unit_interval
from fedsim.evaluation.mann_whitney import bucketed_auc, exact_auc
from fedsim.evaluation.methods import METHODS, AucMethod, Estimate, Public, Settings, client_rng
from fedsim.progress import progress_bar


def multiclass_methods() -> list[str]:
    """The AUC methods that support K classes (their release survives one label moving two counts)."""
    return [name for name in METHODS.names() if METHODS.get(name).noise_for_two_counts(Settings(1.0, 1e-6))
            is not None]


def validate_multiclass(scores: np.ndarray, labels: np.ndarray, classes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(n, K) finite float scores and class indices 0..K-1 with every class present and absent somewhere."""
    scores, labels = np.asarray(scores, dtype=np.float64), np.asarray(labels)
    check(scores.ndim == 2 and scores.shape[1] >= 2, "multiclass scores need one column per class (K >= 2)")
    check(labels.ndim == 1 and labels.size == scores.shape[0],
          f"scores and labels have different lengths ({scores.shape[0]} and {labels.size})")
    check(bool(np.isfinite(scores).all()), "scores must be finite (found NaN or inf)")
    counts = np.bincount(labels.astype(np.int64), minlength=scores.shape[1])
    check(counts.size == scores.shape[1], "class indices must lie in 0..K-1")
    for k, count in enumerate(counts):
        if count == 0 or count == labels.size:
            raise UserError(f"class {classes[k]!r} has {count} of {labels.size} examples: its one-vs-rest AUC is "
                            f"undefined (every class needs examples in and out of it)")
    return scores, labels.astype(np.int64)


def class_publics(method: AucMethod, settings: Settings, scores: np.ndarray,
                  owner: np.ndarray | None) -> list[Public]:
    """Each class's public step on its own score column, with the noise for two moving counts (see the
    module docstring); the default bucket rule runs at eps/2, the per-class budget in Laplace terms."""
    noise = method.noise_for_two_counts(settings)
    bucket_settings = dataclasses.replace(settings, epsilon=settings.epsilon / 2)
    return [dataclasses.replace(method.public(scores[:, k], bucket_settings, owner), noise=noise,
                                epsilon=settings.epsilon)
            for k in range(scores.shape[1])]


ClassCounts = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]  # (counts, sizes, variances, mixed)


def macro_estimate(per_class: list[ClassCounts]) -> tuple[Estimate, list[float]]:
    """The macro AUC (the mean of the classes' bucketed AUCs of their noisy counts) with a 95% interval for the
    exact macro AUC, estimate +- (noise half-width + sum_k U_k / K) within [0, 1]; and the class AUCs.

    Proof sketch. exact - estimate = (1/K) sum_k (exact_k - bucketed_k(c_k)) + (1/K) sum_k (bucketed_k(c_k) -
    bucketed_k(c~_k)). First sum: |exact_k - bucketed_k| <= M_k (`intervals` module docstring), so it is at
    most (1/K) sum_k M_k by the triangle inequality (added linearly: worst-case terms, module docstring);
    U_k = `tied_mass_upper` at level 1 - ALPHA_BOUND / m, m the number of classes with a mixed bucket (U_k = 0
    = M_k for the others), so P(some M_k > U_k) <= ALPHA_BOUND (Bonferroni). Second sum: independent noise per
    class (each class's counts get their own draws); class k's noise sd is read off its `ratio_interval` at
    level 1 - ALPHA_NOISE as half-width / Z_NOISE, and the mean's half-width is Z_NOISE sqrt(sum_k sd_k^2) / K
    (normal approximation of a sum of K independent terms), missed with probability ~ ALPHA_NOISE. Union bound:
    P(miss) <= ALPHA_NOISE + ALPHA_BOUND = 0.05. With no mixed bucket the whole 5% goes to the noise (Z95)."""
    k = len(per_class)
    class_aucs = [bucketed_auc(c, n) for c, n, _, _ in per_class]
    estimate = float(np.mean(class_aucs))
    mixed = [np.ones(np.size(n), dtype=bool) if m is None else np.asarray(m, dtype=bool) for _, n, _, m in per_class]
    bounded = sum(bool(m.any()) for m in mixed)
    z_noise = Z_NOISE if bounded else Z95
    z_bound = float(norm.ppf(1.0 - ALPHA_BOUND / max(bounded, 1)))
    noise_variance, bucketing = 0.0, 0.0
    for (counts, sizes, variances, _), in_mixed in zip(per_class, mixed, strict=True):
        low, high = ratio_interval(counts, sizes, variances, z_noise)
        noise_variance += ((high - low) / (2 * z_noise)) ** 2
        if in_mixed.any():
            bucketing += tied_mass_upper(counts, sizes, variances, in_mixed, z_bound)
    half = z_noise * math.sqrt(noise_variance) / k + bucketing / k
    return Estimate(estimate, unit_interval((estimate - half, estimate + half))), class_aucs


def guarantee(method: AucMethod, settings: Settings, noise: float, k: int) -> str:
    if method.name == "exact":
        return "no privacy: the macro AUC of the true labels (the reference)"
    if math.isinf(settings.epsilon):
        return f"no noise (epsilon = inf): no privacy; the noise-free value of {method.name} over {k} classes"
    if method.name == "hist_gauss":
        return (f"({settings.epsilon:g}, {settings.delta:g})-label-DP over all {k} classes: N(0, {noise:.4g}^2) on "
                "each class's per-bucket counts; one label change moves one count in two classes (L2 "
                "sensitivity sqrt(2))")
    return (f"{settings.epsilon:g}-label-DP over all {k} classes: Laplace({noise:.4g}) on each class's per-bucket "
            "counts; one label change moves one count in two classes (L1 sensitivity 2)")


def exact_macro_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean([exact_auc(scores[:, k], labels == k) for k in range(scores.shape[1])]))


def run_multiclass_auc(method: str, scores: np.ndarray, labels: np.ndarray, classes: list[str],
                       epsilon: float | None, delta: float | None = None, buckets: int | None = None,
                       clients: int = 1, split: str = "iid", repeats: int = 1, seed: int = 0,
                       show_progress: bool = True, bucketing: str = "mass") -> dict[str, Any]:
    """The `fedsim auc --class-scores` JSON dict: method, epsilon, delta, n, classes, estimate (the macro AUC),
    ci95, per_class (class name -> AUC), buckets (per class), guarantee; with repeats > 1 also exact, mean,
    bias, std, rmse, ci_coverage against the exact macro AUC. In-process only."""
    allowed = multiclass_methods()
    check(method in allowed, f"method {method!r} has no multiclass form; valid with --class-scores: "
                             f"{', '.join(allowed)}")
    scores, labels = validate_multiclass(scores, labels, classes)
    settings = make_settings(method, epsilon, delta, buckets, 100, bucketing=bucketing)
    k = scores.shape[1]
    check_counts(repeats, clients, per_repeat=k)
    check(seed >= 0, f"seed must be >= 0, got {seed}")
    chosen = METHODS.get(method)
    parts = split_clients(scores[:, 0], clients, split, seed)
    publics = class_publics(chosen, settings, scores, owners(parts, labels.size))
    prepared = [[chosen.prepare(scores[idx, c], (labels[idx] == c).astype(np.int8), publics[c]) for c in range(k)]
                for idx in parts]
    estimates = []
    with progress_bar(repeats, f"{method} macro AUC", enabled=show_progress and repeats > 1) as advance:
        for repeat in range(repeats):
            rngs = [client_rng(seed, repeat, c) for c in range(len(parts))]
            totals = [chosen.totals([chosen.release(data[c], publics[c], rng) for data, rng in
                                     zip(prepared, rngs, strict=True)], publics[c]) for c in range(k)]
            per_class = [(*t, p.mixed) for t, p in zip(totals, publics, strict=True)]
            estimates.append(macro_estimate(per_class))
            advance(1)
    first, first_classes = estimates[0]
    result: dict[str, Any] = {
        "method": method, "epsilon": None if math.isinf(settings.epsilon) or not chosen.needs_epsilon
        else settings.epsilon, "delta": settings.delta, "n": int(labels.size), "classes": k,
        "estimate": first.estimate, "ci95": list(first.ci95),
        "per_class": dict(zip(classes, first_classes, strict=True)),
        "clients": clients, "split": split, "seed": seed, "repeats": repeats,
        "buckets": [int(p.edges.size) for p in publics],
        "guarantee": guarantee(chosen, settings, publics[0].noise, k),
    }
    if repeats > 1:
        result.update(summarise([e for e, _ in estimates], exact_macro_auc(scores, labels)))
    return result
