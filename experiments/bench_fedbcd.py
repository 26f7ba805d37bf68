"""FedBCD local steps: fewer exchanges for the same number of updates, and what that does to accuracy and leakage.

    python -m fedsim.experiments.bench_fedbcd [--dataset diabetes] [--seeds 3]

Each setting makes the same number of model updates (epochs x local steps = 20): Q = 1 exchanges every step;
Q = 5 and Q = 10 exchange Q times less and reuse the last received embeddings / cut gradient in between
(Liu et al., FedBCD). The curious feature party attacks the last recorded epoch with 1% known labels; its
transcript holds one row per exchange, so larger Q leaves it fewer (and staler) gradients.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from fedsim import attacks
from fedsim.config import TrainConfig
from fedsim.training import train

SETTINGS = [(1, 20), (5, 4), (10, 2)]  # (local steps, epochs): 20 updates per row each
ATTACKS = ["lba", "residual", "model_completion", "mean"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="diabetes")
    parser.add_argument("--rows", type=int, default=None, help="rows of a synthetic dataset")
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"{args.dataset}: 2 feature parties, batch 64, lr 0.003, 1% known labels, attack on the last epoch; "
          f"mean over {args.seeds} seeds")
    print(f"{'Q':>3} {'epochs':>6} {'exchanges':>9} {'MB sent':>8} {'test r2':>8} {'train s':>8}  "
          + "  ".join(f"{a + ' r2':>18}" for a in ATTACKS))
    for local_steps, epochs in SETTINGS:
        rows = []
        for seed in range(args.seeds):
            config = TrainConfig(dataset=args.dataset, rows=args.rows, epochs=epochs, local_steps=local_steps,
                                 lr=0.003, seed=seed, record_last_epochs=1)
            result = train(config)
            view = result.party_view(0)
            scores = [attacks.evaluate_attack(view, result.dataset.y_train, name, seed=seed)["metrics"]["r2"]
                      for name in ATTACKS]
            sent = result.to_json()["communication"]
            rows.append([sent["exchanges"], sent["total_bytes"] / 1e6, result.metrics["r2"], result.train_s, *scores])
        m = np.mean(rows, axis=0)
        print(f"{local_steps:>3} {epochs:>6} {m[0]:>9.0f} {m[1]:>8.2f} {m[2]:>8.3f} {m[3]:>8.2f}  "
              + "  ".join(f"{v:>18.3f}" for v in m[4:]), flush=True)


if __name__ == "__main__":
    main()
