"""Defence benchmark: utility (test MSE), formal epsilon and attack R^2 for every defence, side by side.

For each dataset and seed: no defence; label mechanisms (laplace, gaussian, rr_on_bins, unbiased_opt) at epsilon in
{0.5, 1, 2, 4, 8}; gradient defences at a few strengths. After training, the feature party 0 transcript
is attacked with LBA and model completion (unless --no-attacks) using a seeded
known-label fraction. Clip bounds are public a-priori ranges: diabetes [0, 400] (the progression score
is reported between 25 and 346 in Efron et al. 2004), synthetic_regression [0, 30] (Friedman #1 without
its unit noise lies in [0, 30]).

    python -m fedsim.experiments.bench_defenses --out bench_defenses.csv --workers 15   # the full table
    python -m fedsim.experiments.bench_defenses --seeds 1 --datasets diabetes          # a quick look

Rows are appended to the CSV as they finish (rerunning skips rows already there); the markdown table
(mean +- std over seeds) is printed at the end. Not a timed test.
"""

from __future__ import annotations

import argparse
import csv
import multiprocessing as mp
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fedsim.attacks import evaluate_attack
from fedsim.config import TrainConfig
from fedsim.progress import progress_bar
from fedsim.training import train

EPSILONS = (0.5, 1.0, 2.0, 4.0, 8.0)
DATASETS = {
    "diabetes": {"rows": None, "epochs": 20, "bounds": (0.0, 400.0)},
    "synthetic_regression": {"rows": None, "epochs": 20, "bounds": (0.0, 30.0)},
}
ATTACKS = ("lba", "model_completion")
ATTACK_PARAMS: dict[str, dict[str, Any]] = {"lba": {}, "model_completion": {}}  # the attacks' defaults
KNOWN_FRACTION = 0.05
DELTA = 1e-5


@dataclass(frozen=True)
class Cell:
    """One defence setting: names, epsilon or strength, parameters."""

    defense: str
    strength: str
    label: str | None = None
    gradient: str | None = None
    epsilon: float | None = None
    params: dict[str, Any] = field(default_factory=dict)
    needs_bounds: str | None = None  # "label" (low/high) or "gradient" (label_low/label_high)


def cells() -> list[Cell]:
    out = [Cell("none", "-")]
    for name in ("laplace", "gaussian", "rr_on_bins", "unbiased_opt"):
        out += [Cell(name, f"eps={e:g}", label=name, epsilon=e, needs_bounds="label") for e in EPSILONS]
    out += [Cell("dp_gradient", f"eps={e:g}", gradient="dp_gradient", epsilon=e, params={"clip": 1.0},
                 needs_bounds="gradient") for e in (1.0, 8.0, 64.0)]
    out += [Cell("gaussian_noise", f"ratio={r:g}", gradient="gaussian_noise", params={"ratio": r}) for r in (0.5, 3.0)]
    out += [Cell("laplace_noise", "ratio=1", gradient="laplace_noise", params={"ratio": 1.0}),
            Cell("max_norm", "-", gradient="max_norm"),
            Cell("sparsify", "q=0.95+EF", gradient="sparsify", params={"fraction": 0.95, "error_feedback": True}),
            Cell("label_extension", "rle k=4", gradient="label_extension", params={"dimension": 4})]
    return out


def config_for(cell: Cell, dataset: str, seed: int) -> TrainConfig:
    spec = DATASETS[dataset]
    params = dict(cell.params)
    low, high = spec["bounds"]
    if cell.needs_bounds == "label":
        params.update(low=low, high=high)
    elif cell.needs_bounds == "gradient":
        params.update(label_low=low, label_high=high)
    delta = DELTA if cell.defense in ("gaussian", "dp_gradient") else None
    return TrainConfig(dataset=dataset, rows=spec["rows"], epochs=spec["epochs"], seed=seed,
                       label_defense=cell.label, gradient_defense=cell.gradient, epsilon=cell.epsilon, delta=delta,
                       defense_params=params, record_last_epochs=1)


def run_cell(cell: Cell, dataset: str, seed: int, attacks_on: bool) -> dict[str, Any]:
    result = train(config_for(cell, dataset, seed), record=attacks_on)
    row: dict[str, Any] = {"dataset": dataset, "seed": seed, "defense": cell.defense, "strength": cell.strength,
                           "epsilon": result.privacy.epsilon, "delta": result.privacy.delta,
                           "test_mse": result.metrics["mse"], "test_r2": result.metrics["r2"],
                           "train_s": result.train_s}
    if attacks_on:
        view = result.party_view(0)
        for name in ATTACKS:
            start = time.perf_counter()
            out = evaluate_attack(view, result.dataset.y_train, name, ATTACK_PARAMS[name], KNOWN_FRACTION, None, seed)
            row[f"{name}_r2"] = out["metrics"]["r2"]
            row[f"{name}_s"] = time.perf_counter() - start
    return row


def summarise(table: pd.DataFrame) -> str:
    """Markdown: mean +- std over seeds per (dataset, defence, strength)."""
    if {"lba_r2", "model_completion_r2"} <= set(table):  # what the attacker would use: its better attack
        table = table.assign(best_attack_r2=table[["lba_r2", "model_completion_r2"]].max(axis=1))
    metrics = [c for c in ("test_mse", "lba_r2", "model_completion_r2", "best_attack_r2") if c in table]
    order = {(c.defense, c.strength): i for i, c in enumerate(cells())}
    table = table.assign(_order=[order.get((d, s), len(order)) for d, s in zip(table["defense"], table["strength"],
                                                                               strict=True)])
    table = table.sort_values(["_order", "seed"], kind="stable")
    lines = []
    for dataset, part in table.groupby("dataset", sort=False):
        lines += [f"\n### {dataset} ({part['seed'].nunique()} seeds)\n",
                  "| defence | strength | formal epsilon | " + " | ".join(metrics) + " | train s |",
                  "|---" * (4 + len(metrics)) + "|"]
        for (defense, strength), g in part.groupby(["defense", "strength"], sort=False):
            eps = g["epsilon"].dropna()
            eps_text = "none" if eps.empty else f"{eps.mean():.3g}"
            cols = " | ".join(f"{g[m].mean():.4g} ± {g[m].std(ddof=0):.2g}" for m in metrics)
            lines.append(f"| {defense} | {strength} | {eps_text} | {cols} | {g['train_s'].mean():.1f} |")
    return "\n".join(lines)


def _work(job: tuple[str, int, Cell, bool]) -> dict[str, Any]:
    """One row in a worker process (one torch thread each, so workers do not fight over cores)."""
    import torch

    torch.set_num_threads(1)
    dataset, seed, cell, attacks_on = job
    return run_cell(cell, dataset, seed, attacks_on)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("bench_defenses.csv"))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--workers", type=int, default=1, help="processes (rows are independent)")
    parser.add_argument("--limit", type=int, default=None, help="run at most N rows (a smoke test)")
    parser.add_argument("--no-attacks", action="store_true")
    args = parser.parse_args(argv)
    attacks_on = not args.no_attacks
    done = set()
    if args.out.exists():
        previous = pd.read_csv(args.out)
        done = {(r.dataset, int(r.seed), r.defense, r.strength) for r in previous.itertuples()}
    jobs = [(d, s, c, attacks_on) for s in range(args.seeds) for d in args.datasets for c in cells()
            if (d, s, c.defense, c.strength) not in done][: args.limit]
    with progress_bar(len(jobs), "defence benchmark") as advance:
        if args.workers > 1:
            with mp.get_context("spawn").Pool(args.workers) as pool:
                for row in pool.imap_unordered(_work, jobs):
                    _append(args.out, row)
                    advance(1)
        else:
            for job in jobs:
                _append(args.out, _work(job))
                advance(1)
    table = pd.read_csv(args.out)
    table = table[table["dataset"].isin(args.datasets)]
    print(summarise(table))
    pivot = table.groupby(["dataset", "strength", "defense"])["test_mse"].mean().unstack()
    others = [n for n in ("rr_on_bins", "unbiased_opt") if n in pivot]
    if "laplace" in pivot and others:
        print("\ntest MSE relative to laplace at the same epsilon (same seeds, same run):")
        print(pivot[others].div(pivot["laplace"], axis=0).dropna().round(3).to_string())
    print(f"\nrows: {args.out}  (mean over seeds; attack known fraction {KNOWN_FRACTION})")


def _append(path: Path, row: dict[str, Any]) -> None:
    """One CSV line per finished row, so an interrupted run loses at most the rows in flight."""
    new = not path.exists()
    with path.open("a", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(row))
        if new:
            writer.writeheader()
        writer.writerow(row)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
