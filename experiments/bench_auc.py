"""Private-AUC accuracy and speed, measured side by side in one run.

    python -m fedsim.experiments.bench_auc accuracy --plot auc_error.png [--json auc.json]   # ~10 min on 2 cores
    python -m fedsim.experiments.bench_auc speed [--rows 10000000]
    python -m fedsim.experiments.bench_auc federation   # M = 1 / 10 / 1000, with and without secure aggregation
    python -m fedsim.experiments.bench_auc scalar       # scalar_laplace next to the floor sqrt(2)/(eps min(n+, n-))
    python -m fedsim.experiments.bench_auc coverage     # every method's 95% interval on the small sets

accuracy: on the seeded Criteo stand-in (n = 458,407, 25.59% positives, AUC ~0.766), every private method
at total epsilon {0.1, 1, 8} and M {1, 10, 1000} clients (IID; `--splits iid score_sorted` adds the
non-IID split), R = 50 releases each: bias, std, RMSE, 95%-CI coverage against the exact AUC, one table,
a log-scale plot of RMSE vs epsilon per M, and DPAUC next to the numbers published from the authors' logs.
`--dataset breast_cancer` runs the 285-row small-data case instead.

federation: on the Criteo stand-in at eps = 1, `hist` and `hist_gauss` at M = 1 / 10 / 1000 IID clients, each
client adding its own noise or (`--secure-aggregation`) a share of one central noise, next to DPAUC; RMSE,
bias, coverage and wall time per release (in process). scalar: `scalar_laplace` RMSE against the floor
sqrt(2)/(eps min(n+, n-)) and `hist` at one client. coverage: 95%-interval coverage of the exact AUC and the
RMSE of the reported ([0, 1]) and raw estimates, every method, on breast_cancer and rare_positive.

speed: the exact AUC and `hist` (eps = 1, default buckets) on 10M scores against scikit-learn's
roc_auc_score on the same arrays, interleaved (sklearn, exact, hist, sklearn, ...) and best of 3 each, so
load from other processes hits all alike; prints the ratios.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from fedsim.evaluation import exact_auc, run_auc, synthetic_scores
from fedsim.fileio import write_atomic
from fedsim.progress import progress_bar

METHODS = ("naive_rr", "rr", "dpauc", "hist", "hist_gauss")
EPSILONS = (0.1, 1.0, 8.0)
CLIENTS = (1, 10, 1000)
SMALL_SETS = ("breast_cancer", "rare_positive")
COVERAGE_METHODS = ("naive_rr", "rr", "dpauc", "hist", "hist_gauss", "scalar_laplace")
GAUSS_DELTA = 1e-6
# DPAUC, K = 100, IID, 50 repeats: (bias, std) from the authors' released logs (averaged over 3 epochs).
PUBLISHED_DPAUC = {(1.0, 1): (-0.0002, 0.0005), (1.0, 10): (-0.0010, 0.0017), (1.0, 1000): (-0.024, 0.016),
                   (8.0, 1): (-0.0001, 0.0001), (8.0, 10): (-0.0001, 0.0002), (8.0, 1000): (-0.0013, 0.0024)}


def accuracy(args: argparse.Namespace) -> None:
    scores, labels = synthetic_scores(args.dataset, args.seed)
    cells = [(m, e, c, s) for s in args.splits for c in args.clients for e in args.epsilons for m in args.methods]
    rows = []
    with progress_bar(len(cells), "AUC cells") as advance:
        for method, epsilon, clients, split in cells:
            started = time.perf_counter()
            result = run_auc(method, scores, labels, epsilon, delta=GAUSS_DELTA if method == "hist_gauss" else None,
                             thresholds=100, clients=clients, split=split, repeats=args.repeats, seed=args.seed,
                             show_progress=False)
            result["seconds"] = time.perf_counter() - started
            rows.append(result)
            advance(1)
    print(f"exact AUC {rows[0]['exact']:.6f}, n = {rows[0]['n']:,}, {args.repeats} releases per cell")
    print("| split | M | eps | method | B or K | bias | std | RMSE | CI coverage |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        size = r.get("buckets", r.get("thresholds"))
        print(f"| {r['split']} | {r['clients']} | {r['epsilon']:g} | {r['method']} | {size} | {r['bias']:+.2e} | "
              f"{r['std']:.2e} | {r['rmse']:.2e} | {r['ci_coverage']:.2f} |")
    by = {(r["method"], r["epsilon"], r["clients"], r["split"]): r for r in rows}
    print("\nhist vs dpauc (K = 100), RMSE ratio dpauc / hist:")
    for split in args.splits:
        for clients in args.clients:
            pairs = [(e, by.get(("dpauc", e, clients, split)), by.get(("hist", e, clients, split)))
                     for e in args.epsilons]
            ratios = [f"eps {e:g}: {d['rmse'] / h['rmse']:.1f}x" for e, d, h in pairs if d and h]
            print(f"  {split}, M = {clients}: " + ", ".join(ratios))
    print("\nDPAUC here vs published (bias / std, IID, K = 100):")
    for (epsilon, clients), (bias, std) in PUBLISHED_DPAUC.items():
        r = by.get(("dpauc", epsilon, clients, "iid"))
        if r is not None:
            print(f"  eps {epsilon:g}, M = {clients}: ours {r['bias']:+.4f} / {r['std']:.4f}   "
                  f"published {bias:+.4f} / {std:.4f}")
    if args.json:
        text = json.dumps(rows, indent=1)
        write_atomic(Path(args.json), lambda p: p.write_text(text))
    if args.plot:
        plot(rows, args, Path(args.plot))


def plot(rows: list[dict], args: argparse.Namespace, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    split = args.splits[0]
    fig, axes = plt.subplots(1, len(args.clients), figsize=(4.2 * len(args.clients), 3.8), sharey=True)
    for ax, clients in zip(np.atleast_1d(axes), args.clients, strict=True):
        for method in args.methods:
            points = sorted((r["epsilon"], r["rmse"]) for r in rows
                            if r["method"] == method and r["clients"] == clients and r["split"] == split)
            ax.plot(*zip(*points, strict=True), marker="o", label=method)
        title = f"M = {clients} client{'s' * (clients > 1)} ({split})"
        ax.set(xscale="log", yscale="log", xlabel="total epsilon", title=title)
        ax.grid(True, which="both", alpha=0.3)
    np.atleast_1d(axes)[0].set_ylabel(f"RMSE of the AUC ({args.repeats} releases)")
    np.atleast_1d(axes)[-1].legend()
    fig.suptitle(f"Private AUC on {args.dataset} (n = {rows[0]['n']:,}, exact AUC {rows[0]['exact']:.3f})")
    fig.tight_layout()
    write_atomic(path, lambda p: fig.savefig(p, dpi=120, format="png"))
    print(f"plot: {path}")


def speed(args: argparse.Namespace) -> None:
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(args.seed)
    labels = (rng.random(args.rows) < 0.2559).astype(np.int8)
    scores = 1 / (1 + np.exp(-(rng.standard_normal(args.rows) + 1.03 * labels - 1.5)))
    contenders = {"sklearn roc_auc_score": lambda: roc_auc_score(labels, scores),
                  "exact_auc": lambda: exact_auc(scores, labels),
                  "hist (eps 1)": lambda: run_auc("hist", scores, labels, 1.0, show_progress=False)["estimate"]}
    best = dict.fromkeys(contenders, float("inf"))
    values = {}
    for _ in range(3):
        for name, run in contenders.items():
            started = time.perf_counter()
            values[name] = run()
            best[name] = min(best[name], time.perf_counter() - started)
    base = best["sklearn roc_auc_score"]
    print(f"{args.rows:,} scores, best of 3, interleaved")
    for name in contenders:
        print(f"  {name:24s} {best[name]:7.3f} s  {best[name] / base:5.2f}x sklearn  AUC {values[name]:.6f}")


def run_cell(scores: np.ndarray, labels: np.ndarray, method: str, epsilon: float, repeats: int, seed: int,
             **options: Any) -> dict:
    """One `run_auc` cell with its wall time per release."""
    started = time.perf_counter()
    result = run_auc(method, scores, labels, epsilon, delta=GAUSS_DELTA if method == "hist_gauss" else None,
                     repeats=repeats, seed=seed, show_progress=False, **options)
    result["seconds_per_release"] = (time.perf_counter() - started) / repeats
    return result


def federation(args: argparse.Namespace) -> None:
    """hist / hist_gauss with and without secure aggregation next to DPAUC, at M = 1 / 10 / 1000 (IID)."""
    scores, labels = synthetic_scores(args.dataset, args.seed)
    cells = [(m, c, secure) for c in args.clients for m in ("hist", "hist_gauss", "dpauc")
             for secure in (False, True) if not (secure and (m == "dpauc" or c == 1))]
    rows = []
    with progress_bar(len(cells), "federation cells") as advance:
        for method, clients, secure in cells:
            rows.append(run_cell(scores, labels, method, args.epsilon, args.repeats, args.seed, clients=clients,
                                 secure_aggregation=secure))
            advance(1)
    print(f"{args.dataset}: exact AUC {rows[0]['exact']:.6f}, n = {rows[0]['n']:,}, eps = {args.epsilon:g}, "
          f"{args.repeats} releases per cell, IID clients")
    print("| M | method | secure aggregation | B or K | RMSE | bias | CI coverage | s / release |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        size = r.get("buckets", r.get("thresholds"))
        print(f"| {r['clients']} | {r['method']} | {'yes' if r.get('secure_aggregation') else 'no'} | {size} | "
              f"{r['rmse']:.2e} | {r['bias']:+.1e} | {r['ci_coverage']:.2f} | {r['seconds_per_release']:.3f} |")
    central = {r["method"]: r["rmse"] for r in rows if r["clients"] == 1}
    for r in rows:
        if r.get("secure_aggregation"):
            print(f"  secure {r['method']} at M = {r['clients']}: RMSE {r['rmse'] / central[r['method']]:.2f}x "
                  f"the M = 1 RMSE")


def scalar(args: argparse.Namespace) -> None:
    """scalar_laplace next to the floor sqrt(2)/(eps min(n+, n-)) and next to hist at one client."""
    print("| dataset | eps | floor | scalar_laplace RMSE | / floor | CI coverage | hist RMSE |")
    print("|---|---|---|---|---|---|---|")
    for dataset in args.datasets:
        scores, labels = synthetic_scores(dataset, args.seed)
        minority = min(int(labels.sum()), int(labels.size - labels.sum()))
        for epsilon in args.epsilons:
            floor = math.sqrt(2.0) / (epsilon * minority)
            ours = run_cell(scores, labels, "scalar_laplace", epsilon, args.repeats, args.seed)
            hist = run_cell(scores, labels, "hist", epsilon, args.repeats, args.seed)
            print(f"| {dataset} | {epsilon:g} | {floor:.2e} | {ours['rmse']:.2e} | {ours['rmse'] / floor:.2f} | "
                  f"{ours['ci_coverage']:.2f} | {hist['rmse']:.2e} |")


def coverage(args: argparse.Namespace) -> None:
    """Every method's 95% interval on the small sets: coverage of the exact AUC, RMSE of the reported
    (clipped to [0, 1]) and of the raw estimate."""
    print("| dataset | eps | method | coverage | RMSE | RMSE raw | bias |")
    print("|---|---|---|---|---|---|---|")
    for dataset in args.datasets:
        scores, labels = synthetic_scores(dataset, args.seed)
        for epsilon in args.epsilons:
            for method in args.methods:
                r = run_cell(scores, labels, method, epsilon, args.repeats, args.seed)
                print(f"| {dataset} | {epsilon:g} | {method} | {r['ci_coverage']:.3f} | {r['rmse']:.2e} | "
                      f"{r['rmse_raw']:.2e} | {r['bias']:+.1e} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    acc = sub.add_parser("accuracy")
    acc.add_argument("--plot", help="PNG path for the RMSE-vs-epsilon plot")
    acc.add_argument("--json", help="also write every cell's result dict here")
    acc.add_argument("--repeats", type=int, default=50)
    acc.add_argument("--methods", nargs="+", default=list(METHODS))
    acc.add_argument("--epsilons", nargs="+", type=float, default=list(EPSILONS))
    acc.add_argument("--clients", nargs="+", type=int, default=list(CLIENTS))
    acc.add_argument("--splits", nargs="+", default=["iid"])
    acc.add_argument("--dataset", default="criteo", help="a synthetic score set: criteo | breast_cancer")
    acc.add_argument("--seed", type=int, default=0)
    fast = sub.add_parser("speed")
    fast.add_argument("--rows", type=int, default=10_000_000)
    fast.add_argument("--seed", type=int, default=0)
    fed = sub.add_parser("federation")
    fed.add_argument("--dataset", default="criteo")
    fed.add_argument("--epsilon", type=float, default=1.0)
    fed.add_argument("--clients", nargs="+", type=int, default=list(CLIENTS))
    fed.add_argument("--repeats", type=int, default=50)
    fed.add_argument("--seed", type=int, default=0)
    one = sub.add_parser("scalar")
    one.add_argument("--datasets", nargs="+", default=["criteo", *SMALL_SETS])
    one.add_argument("--epsilons", nargs="+", type=float, default=list(EPSILONS))
    one.add_argument("--repeats", type=int, default=200)
    one.add_argument("--seed", type=int, default=0)
    cov = sub.add_parser("coverage")
    cov.add_argument("--datasets", nargs="+", default=list(SMALL_SETS))
    cov.add_argument("--epsilons", nargs="+", type=float, default=[1.0, 8.0])
    cov.add_argument("--methods", nargs="+", default=list(COVERAGE_METHODS))
    cov.add_argument("--repeats", type=int, default=200)
    cov.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    commands = {"accuracy": accuracy, "speed": speed, "federation": federation, "scalar": scalar,
                "coverage": coverage}
    commands[args.command](args)


if __name__ == "__main__":
    main()
