"""Early stopping of the LBA and the residual attack (`settle`): R² and steps with and without it, side by side.

    python -m fedsim.experiments.bench_lba_settle                    # diabetes and Friedman, seeds 0-2
    python -m fedsim.experiments.bench_lba_settle --seeds 0 --rows 20000

Each cell trains once (20 epochs, the last one recorded), then runs the attack twice on the same transcript
and known labels (1%): with the default `settle` and with `settle=0` (every one of `min_steps` steps). The
claim under test (issue 19): early stopping leaves R² unchanged to 0.01. The last line prints the largest
|delta R²| and exits 1 if it is over 0.01.
"""

from __future__ import annotations

import argparse
import sys
import time

from fedsim.attacks.evaluate import evaluate_attack
from fedsim.config import TrainConfig
from fedsim.training import train

TOLERANCE = 0.01
DATASETS = ("diabetes", "synthetic_regression")
ATTACKS = ("lba", "residual")


def cell(dataset: str, seed: int, rows: int | None) -> list[tuple[str, float, float, int, int, float, float]]:
    """(attack, R² settled, R² full, steps settled, steps full, time settled, time full) for one trained run."""
    config = TrainConfig(dataset=dataset, seed=seed, rows=rows if dataset != "diabetes" else None,
                         record_last_epochs=1)
    run = train(config)
    view, y = run.party_view(0), run.dataset.y_train
    out = []
    for attack in ATTACKS:
        scores = []
        for params in ({}, {"settle": 0}):
            started = time.perf_counter()
            result = evaluate_attack(view, y, attack, known_fraction=0.01, seed=seed, params=params)
            scores.append((result["metrics"]["r2"], result.get("steps", 0), time.perf_counter() - started))
        (r2_s, steps_s, t_s), (r2_f, steps_f, t_f) = scores
        out.append((attack, r2_s, r2_f, steps_s, steps_f, t_s, t_f))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--rows", type=int, default=None, help="Rows of the synthetic set (default: its own).")
    args = parser.parse_args(argv)
    print(f"{'dataset':22s} {'seed':>4s} {'attack':9s} {'R2 settled':>10s} {'R2 full':>8s} {'delta':>7s} "
          f"{'steps':>11s} {'time s':>13s}")
    worst = 0.0
    for dataset in DATASETS:
        for seed in args.seeds:
            for attack, r2_s, r2_f, steps_s, steps_f, t_s, t_f in cell(dataset, seed, args.rows):
                worst = max(worst, abs(r2_s - r2_f))
                print(f"{dataset:22s} {seed:4d} {attack:9s} {r2_s:10.4f} {r2_f:8.4f} {r2_s - r2_f:+7.4f} "
                      f"{steps_s:5d}/{steps_f:5d} {t_s:6.1f}/{t_f:6.1f}", flush=True)
    print(f"largest |delta R2| = {worst:.4f} (claim: <= {TOLERANCE})")
    return 0 if worst <= TOLERANCE else 1


if __name__ == "__main__":
    sys.exit(main())
