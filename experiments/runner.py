"""Run a grid: cells in parallel as Ray tasks (or in-process with one worker), resumable, one results table.

Layout of an output folder:

    DIR/grid.toml              the grid that was last run here (verbatim)
    DIR/cells/<key>.json       one finished cell (status ok or failed), written atomically; key = config hash
    DIR/results.parquet        one row per (cell, attack) of the last grid run here, plus results.csv

A re-run of the same grid skips every cell whose file says ok and retries failed ones; a killed run leaves
only whole cell files (stale temporary files are swept at start), so nothing is half-written. Cells
return their record to the driver, which alone writes files: with `--ray-address`, workers on other
machines need fedsim installed but no shared disk. One runner per DIR at a time: DIR/.fedsim.lock
refuses a second one.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fedsim.errors import UserError, check
from fedsim.experiments.cells import load_record
from fedsim.experiments.expansion import expand
from fedsim.experiments.grid import load_grid
from fedsim.experiments.pool import cluster, execute
from fedsim.experiments.results import write_results
from fedsim.fileio import folder_lock, write_atomic, write_json_atomic
from fedsim.progress import progress_bar

CELLS = "cells"
RUN_LOG = "run.log"  # warnings raised while the cells ran (third-party libraries' included), by cell key


@dataclass
class BenchSummary:
    cells: int
    computed: int
    skipped: int
    failed: int
    results: Path
    wall_s: float
    workers: int

    def to_json(self) -> dict[str, Any]:
        return {"cells": self.cells, "computed": self.computed, "skipped": self.skipped, "failed": self.failed,
                "results": str(self.results), "wall_s": self.wall_s, "workers": self.workers}


def run_grid(grid: str | Path, out: Path, workers: int = 1, ray_address: str | None = None,
             show_progress: bool = True) -> BenchSummary:
    """Validate the grid, run every unfinished cell, write the results table."""
    check(workers >= 1, f"--workers must be >= 1, got {workers}")
    spec, text = load_grid(grid)
    cells = expand(spec)
    check(bool(cells), f"grid {spec.name!r} has no cell to run (its optional datasets are not installed)")
    for name in spec.skipped_sources():
        print(f"fedsim: note: skipping optional dataset {name!r}: pip install 'fedsim[data]' to include it",
              file=sys.stderr)
    if workers > 1 or ray_address:
        flower = [c for c in cells if c.kind == "leakage" and c.config["train"]["runtime"] == "flower"]
        check(not flower, "runtime 'flower' cells start their own Ray simulation: run them with --workers 1 "
                          "and without --ray-address")
    out = Path(out)
    check(not out.is_file(), f"--out {str(out)!r} is a file; give a folder")
    cells_dir = out / CELLS
    finished = {c.key for c in cells if _status(cells_dir / f"{c.key}.json") == "ok"}
    todo = [c for c in cells if c.key not in finished]
    with cluster(workers if todo else 1, ray_address if todo else None) as ray:  # before writing anything
        cells_dir.mkdir(parents=True, exist_ok=True)
        with folder_lock(out, "fedsim bench"):  # a second runner on DIR is refused
            _sweep_stale(cells_dir)
            write_atomic(out / "grid.toml", lambda p: p.write_text(text))
            start = time.perf_counter()
            failed = 0
            title = f"{spec.name}: cells done" + (f" ({len(finished)} reused)" if finished else "")
            with progress_bar(len(todo), title, show_progress and bool(todo)) as advance:
                for record in execute(todo, ray):
                    write_json_atomic(cells_dir / f"{record['key']}.json", record)
                    log_warnings(out / RUN_LOG, record)
                    failed += record["status"] != "ok"
                    advance(1)
            wall_s = time.perf_counter() - start
            records = [load_record(cells_dir / f"{c.key}.json") for c in cells]
            results = write_results(out, records)
    for line in never_applied(records):
        print(f"fedsim: note: {line}", file=sys.stderr)
    return BenchSummary(len(cells), len(todo), len(finished), failed, results, wall_s, workers)


def never_applied(records: list[dict]) -> list[str]:
    """One line per attack that was not applicable in every cell that ran it (the grid asked for nothing it
    could measure), with its first reason: the grid is valid, but the user should know."""
    runs: dict[str, list[dict]] = {}
    for record in records:
        for run in record.get("attacks") or []:
            runs.setdefault(run["spec"]["name"], []).append(run)
    return [f"attack {name!r} did not apply to any cell: {found[0]['not_applicable']}"
            for name, found in runs.items() if all("not_applicable" in r for r in found)]


def log_warnings(path: Path, record: dict) -> None:
    """Append a cell's warnings to the grid's run log, one line each, prefixed with the cell key (appended
    whole lines only: a killed run leaves complete lines)."""
    lines = [f"{record['key']} {line}\n" for line in record.get("warnings") or []]
    if lines:
        with path.open("a") as log:
            log.write("".join(lines))


def _status(path: Path) -> str | None:
    try:
        return load_record(path).get("status")
    except UserError:
        return None


def _sweep_stale(folder: Path) -> None:
    """Remove temporary files a killed run left behind (whole files only are ever renamed into place)."""
    for path in folder.glob(".*.tmp"):
        path.unlink(missing_ok=True)
