"""`fedsim bench`, `fedsim report` and `fedsim demo`: grids of experiments, their report, the main job.

`bench` and `demo` exit with 1 when a cell failed (everything else is still written; a re-run retries it).

`experiments` is imported inside the commands: `fedsim` never imports it at module level.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import typer

from fedsim.cli.common import emit_json, new_console
from fedsim.errors import check


def default_workers() -> int:
    """One worker per core, at most 8 (each worker process holds its own torch); Ray starts only above 1."""
    return max(1, min(8, os.cpu_count() or 1))


WORKERS_HELP = "Parallel cells as Ray tasks: N >= 1 (1 runs in this process without Ray) or auto (the default: one "\
               "per core, at most 8)."


def parse_workers(value: str | None) -> int:
    """`--workers`: an integer >= 1, or auto (also the default). 0 or a negative count is a mistake, not auto."""
    if value is None or value.strip().lower() == "auto":
        return default_workers()
    try:
        workers = int(value)
    except ValueError:
        workers = 0
    check(workers >= 1 and str(workers) == value.strip(), f"--workers must be an integer >= 1 or auto, got {value!r}")
    return workers


def run_resumably(grid: str, out: Path, workers: int, ray_address: str | None, quiet: bool, resume: str) -> Any:
    """`run_grid`; on ctrl-C, says how to resume (finished cells are on disk, a re-run skips them)."""
    from fedsim.experiments.runner import run_grid

    try:
        return run_grid(grid, out, workers, ray_address, show_progress=not quiet)
    except KeyboardInterrupt:
        print(f"fedsim: interrupted; finished cells are saved in {out}: run `{resume}` to resume", file=sys.stderr)
        raise


def bench_command(
    grid: str = typer.Argument(..., help="A grid TOML file, or a shipped grid's name (quick, "
                                         "regression_leakage, dp_auc)."),
    out: Path = typer.Option(..., "--out", help="Output folder; a re-run resumes (finished cells are skipped)."),
    workers: str = typer.Option(None, "--workers", help=WORKERS_HELP),
    ray_address: str = typer.Option(None, "--ray-address", help="Join an existing Ray cluster (e.g. auto)."),
    json_output: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
) -> int:
    """Run an experiment grid, resumably.

    Each cell trains once and runs all its attacks; one row per (cell, attack) in DIR/results.parquet and
    DIR/results.csv. Exit code 1 when a cell failed (a re-run retries it).
    """
    count = parse_workers(workers)
    summary = run_resumably(grid, out, count, ray_address, quiet, f"fedsim bench {grid} --out {out}")
    if json_output:
        emit_json(summary.to_json())
        return 1 if summary.failed else 0
    console = new_console(soft_wrap=True)
    console.print(f"{summary.cells} cells: {summary.computed} computed, {summary.skipped} already done, "
                  f"{summary.failed} failed ({summary.wall_s:.1f} s, {count} worker(s))")
    console.print(f"results: {summary.results} (and results.csv)")
    if summary.failed:
        console.print("re-run the same command to retry the failed cells; errors are in the results table")
    return 1 if summary.failed else 0


def report_command(
    directory: Path = typer.Argument(..., help="A folder written by `fedsim bench --out`."),
    json_output: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
) -> None:
    """Write a grid's report: DIR/report.md and plots.

    Tables per dataset, privacy-utility-leakage plots (Pareto front marked) and AUC error plots in DIR/plots/.
    """
    from fedsim.experiments.report import build_report

    report = build_report(directory)
    if json_output:
        emit_json({"report": str(report.path), "plots": [str(p) for p in report.plots],
                   "headlines": report.headlines, "failed_cells": report.failed_cells})
        return
    console = new_console(soft_wrap=True)
    console.print(f"report: {report.path}")
    for line in report.headlines:  # plain sentences: printed as they are, never read as markup
        console.print(f"  {line}", markup=False)


def demo_command(
    out: Path = typer.Option(Path("fedsim-demo"), "--out", help="Output folder (a re-run resumes)."),
    workers: str = typer.Option(None, "--workers", help=WORKERS_HELP),
    grid: str = typer.Option("quick", "--grid", help="The grid to run (default: the shipped quick grid)."),
    json_output: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
) -> int:
    """Run the main job on built-in data and report it.

    The quick grid (label leakage under label DP on diabetes, private AUC), then its report in
    OUT/report.md; prints the headline numbers. A re-run resumes.
    """
    from fedsim.experiments.report import build_report

    start = time.perf_counter()
    count = parse_workers(workers)
    summary = run_resumably(grid, out, count, None, quiet, f"fedsim demo --grid {grid} --out {out}")
    report = build_report(out)
    wall_s = time.perf_counter() - start
    if json_output:
        emit_json({**summary.to_json(), "report": str(report.path), "headlines": report.headlines,
                   "demo_s": wall_s})
        return 1 if summary.failed else 0
    console = new_console(soft_wrap=True)
    console.print(f"[bold]fedsim demo[/]: {summary.cells} cells ({summary.computed} computed, {summary.skipped} "
                  f"reused, {summary.failed} failed) in {wall_s:.0f} s with {count} worker(s)")
    console.print(f"report: [bold]{report.path}[/]  (plots in {report.path.parent / 'plots'})")
    for line in report.headlines:
        console.print(f"  - {line}", markup=False)
    return 1 if summary.failed else 0
