"""Measure the parallel speed-up of the runner: the same grid with --workers 1 and --workers N, side by side.

    python -m fedsim.experiments.speedup [GRID] [--workers N]      (default: quick, N = 2)

Each run starts from an empty folder, so every cell is computed; the N-worker time includes starting
Ray and its worker processes. Prints both wall times and their ratio.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from fedsim.experiments.runner import run_grid


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("grid", nargs="?", default="quick")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="fedsim-speedup-") as scratch:
        times = {}
        for workers in (1, args.workers):
            summary = run_grid(args.grid, Path(scratch) / f"w{workers}", workers, show_progress=True)
            times[workers] = summary.wall_s
            print(f"{args.grid}: {summary.cells} cells, {summary.failed} failed, --workers {workers}: "
                  f"{summary.wall_s:.1f} s", flush=True)
    print(f"speed-up of --workers {args.workers} over --workers 1: {times[1] / times[args.workers]:.2f}x")


if __name__ == "__main__":
    main()
