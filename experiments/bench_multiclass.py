"""Multiclass label leakage: every multiclass attack against the features-only baselines, and every multiclass
defence's strength against the attacks' accuracy and the main task's.

    python -m fedsim.experiments.bench_multiclass                  # digits and synthetic_multiclass, seed 0
    python -m fedsim.experiments.bench_multiclass --seeds 0 1 2 --out bench_multiclass  # + CSVs

Attacks: one honest run per dataset (MLP top model, the last 2 epochs recorded, 5% known labels) and one in
which party 0 scales its steps (active model completion). Baselines: `mean` (the known labels' class
frequencies, so the majority class) and model completion (a top model fitted on the known labels'
embeddings, no gradients). The exact shape of direct label inference (an identity/sum top on K-wide logits)
has no top model in fedsim's runtimes, so a synthetic transcript of that shape
(fedsim.attacks.synthetic_transcripts) is attacked too.
Defences: digits, each defence at increasing strength; attacks direction_scoring, direct_label_inference and
model_completion. Prints markdown tables (mean over seeds); not a timed test.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import pandas as pd
import torch

from fedsim.attacks import evaluate_attack
from fedsim.attacks.synthetic_transcripts import synthetic_view
from fedsim.config import TrainConfig
from fedsim.experiments.report import _markdown_table
from fedsim.training import train

KNOWN_FRACTION = 0.05
DATASETS = {"digits": {"rows": None, "epochs": 10}, "synthetic_multiclass": {"rows": 3000, "epochs": 10}}
ATTACKS = ("mean", "direct_label_inference", "batch_label_inference", "direction_scoring", "norm_scoring", "lba",
           "model_completion")
ACTIVE_SCALE = 5.0
DEFENCE_ATTACKS = ("direction_scoring", "direct_label_inference", "model_completion")
DEFENCES: list[tuple[str, str, dict[str, Any], float | None]] = [  # (flag, name, params, epsilon)
    ("gradient", "none", {}, None),
    *[("label", "rr", {}, eps) for eps in (8.0, 2.0, 1.0)],
    *[("label", "rr_with_prior", {}, eps) for eps in (2.0, 1.0)],
    *[("gradient", "grad_perturb", {}, eps) for eps in (80.0, 30.0, 10.0)],
    *[("gradient", "mid", {"lambda_mi": lam}, None) for lam in (0.0, 0.0001, 0.001, 0.01, 0.1)],
    *[("gradient", "dcor", {"lambda_dcor": lam}, None) for lam in (0.3, 1.0, 3.0, 10.0)],
    *[("gradient", "cae", {"confusion": c}, None) for c in (0.0, 0.5, 1.0)],
    ("gradient", "cae", {"confusion": 1.0, "discrete_bins": 5}, None),
]


def config(dataset: str, seed: int, **overrides: Any) -> TrainConfig:
    spec = DATASETS[dataset]
    return TrainConfig(dataset=dataset, rows=spec["rows"], task="multiclass", epochs=spec["epochs"], batch_size=64,
                       seed=seed, record_last_epochs=2, **overrides)


def attack_rows(dataset: str, seed: int) -> list[dict[str, Any]]:
    rows = []
    for run, overrides in (("honest", {}), ("active", {"malicious_update_scale": ACTIVE_SCALE})):
        result = train(config(dataset, seed, **overrides))
        view, y = result.party_view(0), result.dataset.y_train
        names = ATTACKS if run == "honest" else ("active_model_completion",)
        for name in names:
            start = time.perf_counter()
            out = evaluate_attack(view, y, name, known_fraction=KNOWN_FRACTION, seed=seed)
            rows.append({"dataset": dataset, "seed": seed, "run": run, "attack": name,
                         "accuracy": out["metrics"]["accuracy"], "macro_f1": out["metrics"]["macro_f1"],
                         "test_accuracy": result.metrics["accuracy"], "attack_s": time.perf_counter() - start})
            print(rows[-1], flush=True)
    return rows


def sum_top_rows(seed: int) -> list[dict[str, Any]]:
    view, y = synthetic_view("sum", n=2000, k=5, epochs=1, batch=64, seed=seed)
    rows = []
    for name in ("mean", "direct_label_inference", "direction_scoring", "model_completion"):
        out = evaluate_attack(view, y, name, known_fraction=KNOWN_FRACTION, seed=seed)
        rows.append({"dataset": "sum-top transcript", "seed": seed, "run": "honest", "attack": name,
                     "accuracy": out["metrics"]["accuracy"], "macro_f1": out["metrics"]["macro_f1"]})
    return rows


def defence_rows(seed: int, dataset: str = "digits") -> list[dict[str, Any]]:
    rows = []
    for flag, name, params, epsilon in DEFENCES:
        chosen = {} if name == "none" else {f"{flag}_defense": name}
        result = train(config(dataset, seed, epsilon=epsilon, defense_params=params, **chosen))
        view, y = result.party_view(0), result.dataset.y_train
        strength = f"eps={epsilon:g}" if epsilon is not None else ", ".join(f"{k}={v:g}" for k, v in params.items())
        row = {"dataset": dataset, "seed": seed, "defence": name, "strength": strength or "-",
               "epsilon": result.privacy.epsilon, "test_accuracy": result.metrics["accuracy"]}
        for attack in DEFENCE_ATTACKS:
            row[attack] = evaluate_attack(view, y, attack, known_fraction=KNOWN_FRACTION, seed=seed)["metrics"][
                "accuracy"]
        print(row, flush=True)
        rows.append(row)
    return rows


def markdown(frame: pd.DataFrame) -> str:
    cells = [[("-" if v != v else f"{v:.3f}") if isinstance(v, float) else ("-" if v is None else str(v)) for v in row]
             for row in frame.itertuples(index=False)]
    return _markdown_table(list(frame.columns), cells)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--no-defences", action="store_true", help="Only the attack table.")
    parser.add_argument("--out", help="Also write the rows of both tables to this CSV prefix (_attacks.csv, "
                                      "_defences.csv).")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    attacks = [row for seed in args.seeds for row in sum_top_rows(seed)]
    attacks += [row for seed in args.seeds for dataset in args.datasets for row in attack_rows(dataset, seed)]
    table = pd.DataFrame(attacks)
    if args.out:
        table.to_csv(f"{args.out}_attacks.csv", index=False)
    summary = table.groupby(["dataset", "run", "attack"], sort=False)[["accuracy"]].mean().reset_index()
    print("\n## Attacks (leak accuracy on the unknown training labels, 5% known)\n")
    print(markdown(summary))
    if args.no_defences:
        return
    defences = pd.DataFrame([row for seed in args.seeds for row in defence_rows(seed)])
    columns = ["epsilon", "test_accuracy", *DEFENCE_ATTACKS]
    if args.out:
        defences.to_csv(f"{args.out}_defences.csv", index=False)
    summary = defences.groupby(["dataset", "defence", "strength"], sort=False)[columns].mean().reset_index()
    print("\n## Defences (digits; attack accuracy on the unknown training labels)\n")
    print(markdown(summary))


if __name__ == "__main__":
    main()
