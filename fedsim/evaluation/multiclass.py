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
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from fedsim.errors import UserError, check
from fedsim.evaluation.driver import check_counts, make_settings, owners, split_clients, summarise
from fedsim.evaluation.mann_whitney import exact_auc, normal_ci
from fedsim.evaluation.methods import METHODS, AucMethod, Estimate, Public, Settings, client_rng, server_rng
from fedsim.progress import progress_bar

Z95 = 1.959963984540054


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


def macro_estimate(per_class: list[Estimate]) -> Estimate:
    """The mean of the class AUCs; its interval from the per-class noise variances (independent noise)."""
    estimate = float(np.mean([e.estimate for e in per_class]))
    variances = [((e.ci95[1] - e.ci95[0]) / (2 * Z95)) ** 2 for e in per_class]
    return Estimate(estimate, normal_ci(estimate, float(np.sum(variances)) / len(per_class) ** 2))


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
                       show_progress: bool = True) -> dict[str, Any]:
    """The `fedsim auc --class-scores` JSON dict: method, epsilon, delta, n, classes, estimate (the macro AUC),
    ci95, per_class (class name -> AUC), buckets (per class), guarantee; with repeats > 1 also exact, mean,
    bias, std, rmse, ci_coverage against the exact macro AUC. In-process only."""
    allowed = multiclass_methods()
    check(method in allowed, f"method {method!r} has no multiclass form; valid with --class-scores: "
                             f"{', '.join(allowed)}")
    scores, labels = validate_multiclass(scores, labels, classes)
    settings = make_settings(method, epsilon, delta, buckets, 100)
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
            per_class = [chosen.estimate([chosen.release(data[c], publics[c], rng) for data, rng in
                                          zip(prepared, rngs, strict=True)], publics[c], server_rng(seed, repeat))
                         for c in range(k)]
            estimates.append((macro_estimate(per_class), per_class))
            advance(1)
    first, first_classes = estimates[0]
    result: dict[str, Any] = {
        "method": method, "epsilon": None if math.isinf(settings.epsilon) or not chosen.needs_epsilon
        else settings.epsilon, "delta": settings.delta, "n": int(labels.size), "classes": k,
        "estimate": first.estimate, "ci95": list(first.ci95),
        "per_class": {name: e.estimate for name, e in zip(classes, first_classes, strict=True)},
        "clients": clients, "split": split, "seed": seed, "repeats": repeats,
        "buckets": [int(p.edges.size) for p in publics],
        "guarantee": guarantee(chosen, settings, publics[0].noise, k),
    }
    if repeats > 1:
        result.update(summarise([e for e, _ in estimates], exact_macro_auc(scores, labels)))
    return result
