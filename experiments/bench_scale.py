"""Scale: one epoch at 1M and at 10M rows side by side, and each run's peak memory.

    python -m fedsim.experiments.bench_scale                  # 1M vs 10M rows of synthetic_regression
    python -m fedsim.experiments.bench_scale --parquet DIR    # also a 10M-row Parquet file written to DIR

Each run is a fresh `fedsim train` process (one epoch, one torch thread, the transcript streamed to disk);
its peak resident set size comes from the kernel's accounting of that child (`os.wait4`). Targets
(issue 14): the 10M epoch within 11x the 1M epoch; peak RSS at most 1.5 GB at 10M rows (the features are
0.4 GB as float32).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from fedsim.data import load_table
from fedsim.streams import Stream


def run_train(args: list[str], out: Path) -> dict:
    """One `fedsim train --json` child: its JSON result and its peak RSS in MB."""
    with open(out / "stdout.json", "w") as stdout:
        child = subprocess.Popen([sys.executable, "-m", "fedsim", "train", *args, "--epochs", "1", "--quiet",
                                  "--json", "--transcript", str(out / "transcript"), "--stream", "--overwrite"],
                                 stdout=stdout)
        _, status, usage = os.wait4(child.pid, 0)
    if status != 0:
        raise SystemExit(f"fedsim train {' '.join(args)} failed (status {status})")
    result = json.loads((out / "stdout.json").read_text())
    return {"train_s": result["timing"]["train_s"], "peak_mb": usage.ru_maxrss / 1024, "test": result["test"]}


def write_parquet(rows: int, folder: Path) -> Path:
    """The synthetic_regression table as a Parquet file (features float32, target y)."""
    features, target, _ = load_table("synthetic_regression", np.random.default_rng([0, Stream.DATASET]), rows)
    path = folder / f"synthetic_{rows}.parquet"
    features.assign(y=target).to_parquet(path, index=False)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", type=int, default=1_000_000)
    parser.add_argument("--large", type=int, default=10_000_000)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--parquet", type=Path, help="also train from a --large-row Parquet file written here")
    args = parser.parse_args()
    common = ["--batch-size", str(args.batch_size)]
    runs = {}
    with tempfile.TemporaryDirectory() as tmp:
        for rows in (args.small, args.large):
            runs[f"synthetic {rows:,}"] = run_train(["--dataset", "synthetic_regression", "--rows", str(rows), *common],
                                                    Path(tmp))
        if args.parquet:
            args.parquet.mkdir(parents=True, exist_ok=True)
            path = write_parquet(args.large, args.parquet)
            runs[f"parquet {args.large:,}"] = run_train(["--data", str(path), "--target", "y", *common], Path(tmp))
    small = runs[f"synthetic {args.small:,}"]["train_s"]
    print(f"one epoch, batch {args.batch_size}, 2 feature parties, transcript streamed to disk")
    for name, run in runs.items():
        print(f"{name:>22} rows: epoch {run['train_s']:7.1f} s ({run['train_s'] / small:5.2f}x the "
              f"{args.small:,}-row epoch), peak RSS {run['peak_mb']:6.0f} MB, test r2 {run['test']['r2']:.4f}")


if __name__ == "__main__":
    main()
