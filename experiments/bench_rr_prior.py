"""Test accuracy of plain k-ary RR (`rr`) against LP-2ST (`rr_with_prior`) at the same label-DP epsilon.

    python -m fedsim.experiments.bench_rr_prior                     # the table in docs/defenses.md

Settings: `digits` (10 classes, 1437 training rows) and `synthetic_multiclass` (5 classes, drawn with
`--rows 3000`: 2400 training rows), 2 feature parties, the default models, 20 epochs, batch 64, Adam 1e-3;
epsilon 1, 2, 4; seeds 0-2; `rr_with_prior` at its default parameters unless `--param` says otherwise.
One line per (dataset, epsilon): both defences' mean test accuracy, their difference, and the per-seed
values. 80-300 s on 2 shared cores (measured 77 s and 296 s under different loads).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from fedsim.config import TrainConfig
from fedsim.experiments.report_markdown import markdown_table
from fedsim.params import parse_params
from fedsim.training import train

DATASETS = {"digits": None, "synthetic_multiclass": 3000}  # name -> --rows (None: the fixed table)
DEFENCES = ("rr", "rr_with_prior")


def accuracy(dataset: str, defense: str, epsilon: float, seed: int, epochs: int, params: dict) -> float:
    config = TrainConfig(dataset=dataset, rows=DATASETS[dataset], parties=2, epochs=epochs, batch_size=64,
                         seed=seed, label_defense=defense, epsilon=epsilon,
                         defense_params=params if defense == "rr_with_prior" else {})
    return float(train(config, record=False).metrics["accuracy"])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--epsilons", nargs="+", type=float, default=[1.0, 2.0, 4.0])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--param", action="append", default=[], help="rr_with_prior parameter KEY=VALUE")
    args = parser.parse_args(argv)
    params = parse_params(args.param, "--param")
    started = time.perf_counter()
    rows = []
    for dataset in args.datasets:
        for epsilon in args.epsilons:
            acc = {d: [accuracy(dataset, d, epsilon, s, args.epochs, params) for s in args.seeds] for d in DEFENCES}
            means = {d: float(np.mean(v)) for d, v in acc.items()}
            rows.append([dataset, f"{epsilon:g}", f"{means['rr']:.3f}", f"{means['rr_with_prior']:.3f}",
                         f"{means['rr_with_prior'] - means['rr']:+.3f}",
                         " ".join(f"{v:.3f}" for v in acc["rr"]), " ".join(f"{v:.3f}" for v in acc["rr_with_prior"])])
            print(" | ".join(rows[-1]), flush=True)
    header = ["dataset", "eps", "rr", "rr_with_prior", "difference", "rr per seed", "rr_with_prior per seed"]
    print(f"\nseeds {args.seeds}, {args.epochs} epochs, rr_with_prior params {params or 'default'}, "
          f"{time.perf_counter() - started:.0f} s\n")
    print(markdown_table(header, rows))


if __name__ == "__main__":
    main()
