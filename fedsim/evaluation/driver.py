"""`run_auc`: validate inputs, split the examples over clients, run a method's public / prepare / release /
estimate steps (in-process or over Flower), and with repeats evaluate it against the exact AUC.

Randomness: the client split uses Generator([seed, 0]); client c's noise in repeat r uses
Generator([seed, 1, r, c]). Each client owns its stream, so a Flower client draws exactly what the
in-process client draws.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from fedsim.errors import UserError, check
from fedsim.evaluation.curves import (
    Projection,
    check_curve_method,
    curve_rng,
    curves_report,
    release_from_clients,
    secure_count_release,
)
from fedsim.evaluation.intervals import unit_estimate, unit_interval
from fedsim.evaluation.mann_whitney import BUCKETINGS, exact_auc
from fedsim.evaluation.methods import (
    METHODS,
    AucMethod,
    Estimate,
    Public,
    Release,
    Settings,
    bucket_placing_methods,
    check_layout,
    client_rng,
    places_buckets,
    server_rng,
)
from fedsim.evaluation.secure_aggregation import SecureRun, check_secure, run_secure_local
from fedsim.limits import check_memory
from fedsim.params import validate_params
from fedsim.progress import progress_bar
from fedsim.streams import AucStream

SPLITS = ("iid", "score_sorted")
# what one repeat keeps until the summary (its Estimate and a few floats per summary array) and what one client
# holds for the whole run (its index array, prepared counts and one release in flight): memory estimates
REPEAT_BYTES = 512
CLIENT_BYTES = 2048
SETTINGS = ("horizontal", "vertical")
SHARED_SETTINGS = ("epsilon", "buckets", "thresholds")


def validate_inputs(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Float scores and 0/1 labels of equal length with both classes present, else a one-line UserError."""
    scores, labels = np.asarray(scores), np.asarray(labels)
    check(scores.ndim == 1 and labels.ndim == 1, "scores and labels must be one-dimensional")
    check(scores.size == labels.size,
          f"scores and labels have different lengths ({scores.size} and {labels.size})")
    try:
        scores = np.asarray(scores, dtype=np.float64)
        if labels.dtype.kind not in "biuf":
            labels = labels.astype(np.float64)
    except (TypeError, ValueError):
        raise UserError("scores and labels must be numbers (labels 0 or 1)") from None
    if not np.isfinite(scores).all():
        check(not np.isnan(scores).any(), f"scores contain NaN ({int(np.isnan(scores).sum())} values)")
        raise UserError("scores must be finite (found inf)")
    check(bool(((labels == 0) | (labels == 1)).all()), "labels must be 0 or 1 (found other values)")
    labels = labels.astype(np.int8)
    positives = int(labels.sum(dtype=np.int64))
    check(0 < positives < labels.size,
          f"labels contain a single class ({positives} positives of {labels.size}): the AUC is undefined")
    return scores, labels


def make_settings(method: str, epsilon: float | None, delta: float | None, buckets: int | None,
                  thresholds: int, threshold: float | None = None, bucketing: str = "mass") -> Settings:
    """Settings checked by the method's parameter schema (`AucMethod.Params`). `epsilon`, `buckets` and
    `thresholds` are shared settings (a grid sweeps them across methods, the CLI always passes thresholds):
    a method that does not take one ignores it, except a finite epsilon given to a method without one
    (`exact`), which would read as private (inf, no noise, is what it does). Any other setting a method does
    not take is an error, and so is `bucketing` other than `mass` where there are no edges to place
    (`places_buckets`)."""
    chosen = METHODS.get(method)
    check(bucketing in BUCKETINGS, f"unknown bucketing {bucketing!r}; valid: {', '.join(BUCKETINGS)}")
    if bucketing != "mass" and not places_buckets(method, buckets):
        by_default, with_buckets = bucket_placing_methods()
        raise UserError(f"--bucketing {bucketing} places bucket edges, and {method} has none to place; it applies "
                        f"to {', '.join(by_default)}, or to {', '.join(with_buckets)} with --buckets B")
    check(epsilon is not None or not chosen.needs_epsilon,
          f"method {method} needs --epsilon EPS (> 0; inf for no noise)")
    check(epsilon is None or math.isinf(epsilon) or chosen.needs_epsilon,
          f"method {method} takes no --epsilon (it adds no noise: no privacy); drop --epsilon "
          f"or choose a private method: {', '.join(m for m in METHODS.names() if METHODS.get(m).needs_epsilon)}")
    given = {"epsilon": epsilon, "delta": delta, "buckets": buckets, "thresholds": thresholds, "threshold": threshold}
    fields = chosen.Params.model_fields
    values = {k: v for k, v in given.items() if v is not None and (k in fields or k not in SHARED_SETTINGS)}
    p = validate_params(chosen.Params, values, f"AUC method {method!r}").model_dump()
    return Settings(epsilon=float(p.get("epsilon", math.inf)), delta=p.get("delta"), buckets=p.get("buckets"),
                    thresholds=p.get("thresholds", thresholds), threshold=p.get("threshold"), bucketing=bucketing)


def check_counts(repeats: int, clients: int, per_repeat: int = 1) -> None:
    """Refuse --repeats and --clients beyond what this machine's memory holds, before any release
    (`per_repeat`: estimates kept per repeat, one per class with --class-scores)."""
    check(repeats >= 1, f"repeats must be >= 1, got {repeats}")
    check_memory("--repeats", repeats, REPEAT_BYTES * per_repeat, "the estimates of every release")
    check_memory("--clients", clients, CLIENT_BYTES * per_repeat, "each client's share of the scores and its release")


def split_clients(scores: np.ndarray, clients: int, split: str, seed: int) -> list[np.ndarray]:
    """Example indices per client: `iid` (a seeded random permutation cut into M near-equal parts) or
    `score_sorted` (contiguous blocks of the examples sorted by score: the non-IID extreme)."""
    check(split in SPLITS, f"unknown split {split!r}; valid: {', '.join(SPLITS)}")
    check(1 <= clients <= scores.size, f"clients must be between 1 and n = {scores.size}, got {clients}")
    if clients == 1:
        return [np.arange(scores.size)]
    if split == "iid":
        order = np.random.default_rng([seed, AucStream.CLIENT_SPLIT]).permutation(scores.size)
    else:
        order = np.argsort(scores, kind="stable")
    return np.array_split(order, clients)


def owners(parts: list[np.ndarray], n: int) -> np.ndarray | None:
    """The client of each example (None for one client): public, since it says nothing about labels."""
    if len(parts) == 1:
        return None
    owner = np.empty(n, dtype=np.int64)
    for client, idx in enumerate(parts):
        owner[idx] = client
    return owner


def release_all(method: AucMethod, prepared: list[Any], public: Public, seed: int, repeat: int) -> list[dict]:
    """Every client's label-DP release for one repeat, in client order."""
    return [method.release(data, public, client_rng(seed, repeat, c)) for c, data in enumerate(prepared)]


def run_in_process(method: AucMethod, settings: Settings, scores: np.ndarray, labels: np.ndarray,
              parts: list[np.ndarray], repeats: int, seed: int,
              show_progress: bool) -> tuple[Public, list[Estimate], list[Release]]:
    """In-process: the server's public step, each client's prepare once, then release + estimate per repeat;
    also returns repeat 0's releases (what `--curves` post-processes)."""
    public = method.public(scores, settings, owners(parts, scores.size))
    if len(parts) == 1:  # one client holds everything, in order: no copies (10M scores: 0.3 s saved)
        prepared = [method.prepare(scores, labels, public)]
    else:
        prepared = [method.prepare(scores[idx], labels[idx], public) for idx in parts]
    estimates, first = [], []  # type: list[Estimate], list[Release]
    with progress_bar(repeats, f"{method.name} AUC", enabled=show_progress and repeats > 1) as advance:
        for repeat in range(repeats):
            releases = release_all(method, prepared, public, seed, repeat)
            estimates.append(method.estimate(releases, public, server_rng(seed, repeat)))
            first = releases if repeat == 0 else first
            advance(1)
    return public, estimates, first


def summarise(estimates: list[Estimate], exact: float) -> dict[str, float]:
    """Bias, std, RMSE and 95%-interval coverage and mean width of the reported estimates and intervals (in
    [0, 1]) against the exact AUC, and the mean and RMSE of the raw ones (`mean_raw`, `rmse_raw`)."""
    raw = np.array([e.estimate for e in estimates])
    values = np.clip(raw, 0.0, 1.0)
    low, high = np.array([unit_interval(e.ci95) for e in estimates]).T
    return {"exact": exact, "mean": float(values.mean()), "bias": float(values.mean() - exact),
            "std": float(values.std(ddof=1)) if values.size > 1 else 0.0,
            "rmse": float(np.sqrt(np.mean((values - exact) ** 2))),
            "ci_coverage": float(np.mean((low <= exact) & (exact <= high))), "ci_width": float(np.mean(high - low)),
            "mean_raw": float(raw.mean()), "rmse_raw": float(np.sqrt(np.mean((raw - exact) ** 2)))}


def run_secure(method: str, settings: Settings, scores: np.ndarray, labels: np.ndarray, parts: list[np.ndarray],
               repeats: int, seed: int, runtime: str, min_clients: int | None) -> SecureRun:
    """The secure-aggregation histogram, in process or over Flower's SecAgg+ (the same integers)."""
    if runtime == "flower":
        from fedsim.runtime.flower.auc_secagg_app import run_secure_flower  # Flower and Ray load only when asked for

        return run_secure_flower(method, scores, labels, parts, settings.epsilon, settings.delta, settings.buckets,
                                 repeats, seed, min_clients, bucketing=settings.bucketing)
    return run_secure_local(method, scores, labels, parts, settings.epsilon, settings.delta, settings.buckets,
                            repeats, seed, min_clients, bucketing=settings.bucketing)


def _finite(value: float | None) -> float | None:
    return None if value is None or math.isinf(value) else float(value)


def run_auc(method: str, scores: np.ndarray, labels: np.ndarray, epsilon: float | None, *,
            delta: float | None = None, buckets: int | None = None, thresholds: int = 100, clients: int = 1,
            split: str = "iid", repeats: int = 1, seed: int = 0, runtime: str = "local",
            show_progress: bool = True, threshold: float | None = None,
            setting: str = "horizontal", secure_aggregation: bool = False,
            min_clients: int | None = None, curves: Projection | None = None, truth: bool = False,
            bucketing: str = "mass") -> dict[str, Any]:
    """The `fedsim auc` JSON dict: method, epsilon, delta, n, estimate (clipped to [0, 1]), estimate_raw
    (before clipping: average these over releases), ci95 (within [0, 1]) (+ exact, bias, std, rmse,
    ci_coverage, ci_width, mean_raw, rmse_raw when repeats > 1; at_threshold with `threshold`). `epsilon` = inf runs
    without noise (reported as null: no guarantee). Extra keys: clients, split, runtime, seed, repeats,
    buckets (or DPAUC's thresholds and its 4K / 2K accounting), guarantee (one sentence).

    `setting`: horizontal (M clients with scores and labels) or vertical (a score holder and one label
    holder; clients must be 1). In-process both are the same computation; over Flower (`runtime="flower"`)
    they are different apps (see `fedsim.runtime.flower.auc_app`).

    `secure_aggregation` (hist, hist_gauss; M >= 2 clients): each client adds a share of one central noise
    and the server learns only the sum (`fedsim.evaluation.secure_aggregation`; over Flower, SecAgg+). Shares
    are sized for `min_clients` (default M) contributors; the JSON adds secure_aggregation, min_clients,
    contributors, noise, noise_parameter and achieved_epsilon. M = 1 is refused: one client's release
    already carries one central noise, there is nothing to aggregate.

    `curves` (a projection, `fedsim.evaluation.curves`): the JSON adds `curves`, post-processed from what the
    server received in release 0, in process or over Flower (no extra epsilon); `truth` adds the exact
    curves at the same thresholds (simulation only)."""
    scores, labels = validate_inputs(scores, labels)
    settings = make_settings(method, epsilon, delta, buckets, thresholds, threshold, bucketing)
    check(min_clients is None or secure_aggregation, "--min-clients applies with --secure-aggregation only")
    if secure_aggregation:
        check_secure(method, clients, min_clients)
        check(threshold is None, "--threshold is not available with --secure-aggregation")
    check_counts(repeats, clients)
    check(seed >= 0, f"seed must be >= 0, got {seed}")
    check(runtime in ("local", "flower"), f"unknown runtime {runtime!r}; valid: local, flower")
    check(setting in SETTINGS, f"unknown setting {setting!r}; valid: {', '.join(SETTINGS)}")
    check(setting == "horizontal" or clients == 1, "the vertical setting has one label holder: use --clients 1")
    chosen = METHODS.get(method)
    check_layout(chosen, clients)
    if curves is not None:
        check_curve_method(method)
    parts = split_clients(scores, clients, split, seed)
    if secure_aggregation:
        run = run_secure(method, settings, scores, labels, parts, repeats, seed, runtime, min_clients)
        estimates, info = run.estimates, run.info()
        if curves is not None:
            release = secure_count_release(run)
    else:
        if runtime == "flower":
            from fedsim.runtime.flower.auc_app import run_flower  # Flower and Ray load only when asked for

            public, estimates, released = run_flower(chosen, settings, scores, labels, parts, repeats, seed,
                                                     setting)
        else:
            public, estimates, released = run_in_process(chosen, settings, scores, labels, parts, repeats, seed,
                                                         show_progress)
        info = {**public.info, "guarantee": chosen.guarantee(settings, public)}
        if curves is not None:
            release = release_from_clients(method, public, released, scores)
    first = estimates[0]
    info = {k: _finite(v) if isinstance(v, float) else v for k, v in info.items()}
    result: dict[str, Any] = {
        "method": method, "epsilon": _finite(settings.epsilon) if chosen.needs_epsilon else None,
        "delta": settings.delta, "n": int(scores.size), "estimate": unit_estimate(first.estimate),
        "estimate_raw": first.estimate, "ci95": list(unit_interval(first.ci95)),
        "clients": clients, "split": split, "setting": setting, "runtime": runtime, "seed": seed, "repeats": repeats,
        **info,
    }
    if "buckets" in info:
        result["bucketing"] = settings.bucketing
    if first.metrics is not None:
        result["at_threshold"] = first.metrics
    if repeats > 1:
        result.update(summarise(estimates, exact_auc(scores, labels)))
    if chosen.no_interval is not None:  # never a nominal 95% label on a band that does not cover the exact AUC
        result["ci95"], result["ci95_interval"] = None, chosen.no_interval
    if curves is not None:
        result["curves"] = curves_report(release, curves, curve_rng(seed, 0), (scores, labels) if truth else None,
                                         threshold)
    return result
