"""The `best` attack's time against the training time, at 50k rows (issue 19's budget: at most 3x).

    python -m fedsim.experiments.bench_best_time                 # synthetic_regression, 50,000 rows, seed 0
    python -m fedsim.experiments.bench_best_time --rows 20000 --epochs 5

Trains once (recording the last epoch), then runs `--attack best` (every applicable attack on its small
grid, chosen on held-out known labels) and, for scale, `lba` alone, on the same transcript and known labels
(1%). Both times are wall clock in this process, measured one after the other on the same machine; the
ratio is what the budget is about.
"""

from __future__ import annotations

import argparse
import sys
import time

from fedsim.attacks.evaluate import evaluate_attack
from fedsim.config import TrainConfig
from fedsim.training import train

BUDGET = 3.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    config = TrainConfig(dataset="synthetic_regression", rows=args.rows, epochs=args.epochs, seed=args.seed,
                         record_last_epochs=1)
    started = time.perf_counter()
    run = train(config)
    train_s = time.perf_counter() - started
    view, y = run.party_view(0), run.dataset.y_train
    print(f"training: {args.rows} rows, {args.epochs} epochs, batch {config.batch_size}: {train_s:.1f} s", flush=True)
    ratio = 0.0
    for attack in ("lba", "best"):
        started = time.perf_counter()
        result = evaluate_attack(view, y, attack, known_fraction=0.01, seed=args.seed)
        seconds = time.perf_counter() - started
        chosen = f", chose {result['chosen']}" if "chosen" in result else ""
        print(f"{attack:5s}: {seconds:7.1f} s = {seconds / train_s:4.2f}x training, R2 {result['metrics']['r2']:.4f}"
              f"{chosen}", flush=True)
        if attack == "best":
            ratio = seconds / train_s
    print(f"best / training = {ratio:.2f} (budget: <= {BUDGET:g})")
    return 0 if ratio <= BUDGET else 1


if __name__ == "__main__":
    sys.exit(main())
