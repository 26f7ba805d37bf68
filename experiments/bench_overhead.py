"""Split-learning overhead and transcript memory, measured side by side in one run.

    python -m fedsim.experiments.bench_overhead            # time: split vs monolithic at batch 64/256/1024, 100k rows
    python -m fedsim.experiments.bench_overhead --memory   # peak RSS at 1M rows: no transcript vs streamed transcript

Timing runs the two variants alternately (split, monolithic, split, ...) and keeps each one's best epoch, so
load from other processes hits both alike. Memory runs each variant in a fresh subprocess and reads its
peak resident set size.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from fedsim.assembly import build_feature_party, build_label_party, load_dataset, resolve_defenses
from fedsim.config import ModelConfig, TrainConfig
from fedsim.monolithic import MonolithicTrainer
from fedsim.runtime.local import run_local
from fedsim.schedule import Schedule
from fedsim.training import train


def _config(batch_size: int, rows: int, hidden: int = 64) -> TrainConfig:
    return TrainConfig(dataset="synthetic_regression", rows=rows, parties=2, epochs=1, batch_size=batch_size,
                       model=ModelConfig(embedding_dim=16, bottom_hidden=hidden, top_hidden=hidden))


def _time_split(config: TrainConfig, dataset, epoch: int) -> float:
    label, gradient = resolve_defenses(config, dataset.task)
    parties = [build_feature_party(config, dataset, k) for k in range(dataset.parties)]
    label_party = build_label_party(config, dataset, label, gradient)
    schedule = Schedule(dataset.n_train, config.batch_size, 1, config.seed + epoch)
    start = time.perf_counter()
    run_local(parties, label_party, schedule)
    return time.perf_counter() - start


def _time_monolithic(config: TrainConfig, dataset, epoch: int) -> float:
    trainer = MonolithicTrainer(config, dataset)
    schedule = Schedule(dataset.n_train, config.batch_size, 1, config.seed + epoch)
    start = time.perf_counter()
    trainer.fit(schedule)
    return time.perf_counter() - start


def bench_time(rows: int, repeats: int, hidden: int) -> list[dict]:
    results = []
    print(f"{rows:,} rows, 2 feature parties, MLPs of width {hidden}, 16-dim embeddings, Adam")
    for batch_size in (64, 256, 1024):
        config = _config(batch_size, rows, hidden)
        dataset = load_dataset(config)
        split, mono = [], []
        for r in range(repeats):
            split.append(_time_split(config, dataset, r))
            mono.append(_time_monolithic(config, dataset, r))
        results.append({"batch_size": batch_size, "split_s": min(split), "monolithic_s": min(mono),
                        "ratio": min(split) / min(mono)})
        print(f"batch {batch_size:5d}: split {min(split):.3f} s/epoch, monolithic {min(mono):.3f} s/epoch, "
              f"split/monolithic = {min(split) / min(mono):.3f}", flush=True)
    return results


def _memory_child(mode: str, rows: int) -> None:
    config = _config(1024, rows).model_copy(update={"epochs": 2})
    with tempfile.TemporaryDirectory() as tmp:
        if mode == "none":
            train(config, record=False)
        elif mode == "in_memory":
            train(config, record=True)
        else:
            train(config, transcript_dir=Path(tmp) / "t", stream=True)
    print(json.dumps({"mode": mode, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def bench_memory(rows: int) -> dict:
    peaks = {}
    for mode in ("none", "streamed", "in_memory"):
        out = subprocess.run([sys.executable, "-m", "fedsim.experiments.bench_overhead", "--memory-child", mode,
                              "--rows", str(rows)], check=True, capture_output=True, text=True).stdout
        peaks[mode] = json.loads(out.strip().splitlines()[-1])["peak_mb"]
    ratio = peaks["streamed"] / peaks["none"]
    print(f"{rows:,} rows, 16-dim embeddings, 2 parties, 2 epochs: peak RSS without transcript "
          f"{peaks['none']:.0f} MB, streaming the full transcript {peaks['streamed']:.0f} MB (ratio {ratio:.2f}), "
          f"holding it in memory {peaks['in_memory']:.0f} MB (ratio {peaks['in_memory'] / peaks['none']:.2f})")
    return {"rows": rows, **peaks, "ratio": ratio}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--memory", action="store_true", help="measure transcript memory instead of time")
    parser.add_argument("--memory-child", choices=["none", "streamed", "in_memory"], help=argparse.SUPPRESS)
    parser.add_argument("--rows", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--hidden", type=int, default=64, help="width of the bottom and top MLPs")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for both variants")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.memory_child:
        _memory_child(args.memory_child, args.rows)
    elif args.memory:
        bench_memory(args.rows or 1_000_000)
    else:
        bench_time(args.rows or 100_000, args.repeats, args.hidden)


if __name__ == "__main__":
    main()
