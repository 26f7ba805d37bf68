"""Run a grid: cells in parallel as Ray tasks (or in-process with one worker), resumable, one results table.

Layout of an output folder:

    DIR/grid.toml              the grid that was last run here (verbatim)
    DIR/cells/<key>.json       one finished cell (status ok or failed), written atomically; key = config hash
    DIR/results.parquet        one row per (cell, attack) of the last grid run here, plus results.csv

A re-run of the same grid skips every cell whose file says ok and retries failed ones; a killed run leaves
only whole cell files (stale temporary files are swept at start), so nothing is half-written. Cells
return their record to the driver, which alone writes files: with `--ray-address`, workers on other
machines need fedsim installed but no shared disk. Run one runner per DIR at a time.
"""

from __future__ import annotations

import json
import os
import platform
import socket
import sys
import time
import traceback
import uuid
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from fedsim.attacks import evaluate_attack
from fedsim.errors import UserError, check
from fedsim.experiments.grid import Cell, config_hash, expand, load_grid
from fedsim.progress import progress_bar
from fedsim.rundir import write_json_atomic
from fedsim.threads import torch_threads

CELLS = "cells"
RESULTS = "results.parquet"
SCORE_SEED = 0  # the scores an AUC study evaluates are fixed; the cell's seed drives the mechanism's noise


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
        _sweep_stale(cells_dir)
        write_atomic(out / "grid.toml", lambda p: p.write_text(text))
        start = time.perf_counter()
        failed = 0
        with progress_bar(len(todo), f"{spec.name}: cells done" + (f" ({len(finished)} reused)" if finished else ""),
                          show_progress and bool(todo)) as advance:
            for record in execute(todo, ray):
                write_json_atomic(cells_dir / f"{record['key']}.json", record)
                failed += record["status"] != "ok"
                advance(1)
        wall_s = time.perf_counter() - start
    results = write_results(out, [load_record(cells_dir / f"{c.key}.json") for c in cells])
    return BenchSummary(len(cells), len(todo), len(finished), failed, results, wall_s, workers)


@contextmanager
def cluster(workers: int, ray_address: str | None) -> Iterator[Any]:
    """Yield the started `ray` module (a local Ray with `workers` CPUs, or the cluster at `ray_address`),
    or None for one worker in this process; shuts Ray down afterwards."""
    if workers == 1 and ray_address is None:
        yield None
        return
    import ray  # slow to import: only when asked for

    warnings.filterwarnings("ignore", message=".*RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO.*", category=FutureWarning)
    try:
        if ray_address:
            _reachable(ray_address)
            ray.init(address=ray_address, logging_level="ERROR", log_to_driver=False)
        else:
            ray.init(num_cpus=workers, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        ray.shutdown()
        where = f"the Ray cluster at {ray_address!r}" if ray_address else "a local Ray"
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"cannot start {where}: {reason}") from None
    try:
        yield ray
    finally:
        ray.shutdown()


def _reachable(address: str) -> None:
    """Fail fast on a HOST:PORT nobody listens on (Ray itself retries for minutes)."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or "://" in address:
        return  # "auto", "ray://...": left to Ray
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as exc:
        raise ConnectionError(f"nothing answers at {address} ({exc.strerror or exc})") from None


def execute(cells: list[Cell], ray: Any) -> Iterable[dict[str, Any]]:
    """Yield each cell's record as it finishes: in this process without `ray`, else as Ray tasks."""
    if ray is None:
        for cell in cells:
            yield run_cell(cell.kind, cell.config, cell.labels)
        return
    task = ray.remote(num_cpus=1, max_retries=0)(run_cell)
    pending = {task.remote(c.kind, c.config, c.labels): c for c in cells}
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1)
        for ref in ready:
            cell = pending.pop(ref)
            try:
                yield ray.get(ref)
            except Exception as exc:  # the worker died (killed, out of memory): record it, go on
                yield failure_record(cell.kind, cell.config, cell.labels, exc, 0.0)


def run_cell(kind: str, config: dict[str, Any], labels: dict[str, Any]) -> dict[str, Any]:
    """Compute one cell; never raises: an error becomes a `failed` record with its message."""
    start = time.perf_counter()
    try:
        with torch_threads(1):  # cells are the unit of parallelism
            body = run_leakage(config) if kind == "leakage" else run_auc_cell(config)
    except Exception as exc:
        return failure_record(kind, config, labels, exc, time.perf_counter() - start)
    errors = [a["error"] for a in body.get("attacks", []) if "error" in a]
    record = _record_head(kind, config, labels, time.perf_counter() - start)
    record.update(body)
    record["status"] = "failed" if errors else "ok"
    record["error"] = f"attack failed: {errors[0]}" if errors else None
    return record


def failure_record(kind: str, config: dict[str, Any], labels: dict[str, Any], exc: BaseException,
                   seconds: float) -> dict[str, Any]:
    record = _record_head(kind, config, labels, seconds)
    record.update(status="failed", error=_describe(exc),
                  traceback="".join(traceback.format_exception(exc)[-6:]))
    return record


def _record_head(kind: str, config: dict[str, Any], labels: dict[str, Any], seconds: float) -> dict[str, Any]:
    return {"key": config_hash(config), "kind": kind, "config": config, "labels": labels,
            "cell_s": seconds, "versions": versions(), "host": platform.node()}


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


def run_leakage(config: dict[str, Any]) -> dict[str, Any]:
    """Train once, then run every listed attack on the same transcript."""
    from fedsim.config import TrainConfig
    from fedsim.training import train

    result = train(TrainConfig(**config["train"]), record=True)
    body: dict[str, Any] = {
        "train": {
            "task": result.dataset.task, "n_train": result.dataset.n_train, "n_test": result.dataset.n_test,
            "metrics": result.metrics, "train_s": result.train_s, "steps": result.steps,
            "privacy": {"epsilon": result.privacy.epsilon, "delta": result.privacy.delta,
                        "guarantee": result.privacy.guarantee, "mechanism": result.privacy.mechanism},
        },
        "attacks": [],
    }
    for spec in config["attacks"]:
        try:
            outcome = evaluate_attack(
                result.party_view(spec["party"]), result.dataset.y_train, spec["name"],
                params=spec["params"] or None, known_fraction=spec["known_fraction"], known=spec["known"],
                seed=result.config.seed,
            )
            body["attacks"].append({"spec": spec, "result": _plain(outcome)})
        except Exception as exc:
            body["attacks"].append({"spec": spec, "error": _describe(exc)})
    return body


def run_auc_cell(config: dict[str, Any]) -> dict[str, Any]:
    from fedsim.evaluation import run_auc

    scores, labels, model = auc_scores(json.dumps(config["source"], sort_keys=True))
    start = time.perf_counter()
    outcome = run_auc(config["method"], scores, labels, config["epsilon"], delta=config["delta"],
                      buckets=config["buckets"], thresholds=config["thresholds"], clients=config["clients"],
                      split=config["split"], repeats=config["repeats"], seed=config["seed"], show_progress=False)
    return {"auc": _plain(outcome), "auc_s": time.perf_counter() - start, "score_model": model}


@lru_cache(maxsize=8)
def auc_scores(source_json: str) -> tuple[np.ndarray, np.ndarray, str]:
    """Scores and labels an AUC cell evaluates (cached per process: every method sees the same scores).

    A synthetic source comes from `fedsim.evaluation.synthetic_scores`. A table gets out-of-fold
    predicted probabilities of a standardised logistic regression (5-fold cross-validation over all rows),
    so every row has a score from a model that never saw its label.
    """
    source = json.loads(source_json)
    if source.get("synthetic"):
        from fedsim.evaluation import synthetic_scores

        scores, labels = synthetic_scores(source["synthetic"], SCORE_SEED)
        return np.asarray(scores, dtype=np.float64), np.asarray(labels), f"synthetic_scores({source['synthetic']!r})"
    import pandas as pd
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from fedsim.data import load_table, read_table

    if source.get("data"):
        features, target = read_table(source["data"], source["target"], None)
    else:
        features, target, _ = load_table(source["name"], np.random.default_rng([SCORE_SEED, 0]), source.get("rows"))
    x = pd.get_dummies(features, dtype=np.float64).to_numpy(dtype=np.float64)
    y = np.asarray(target)
    check(set(np.unique(y)) <= {0, 1}, f"AUC source {source!r} needs 0/1 labels")
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    folds = StratifiedKFold(5, shuffle=True, random_state=SCORE_SEED)
    scores = cross_val_predict(model, x, y, cv=folds, method="predict_proba")[:, 1]
    return scores, y.astype(np.int64), "logistic regression, 5-fold out-of-fold probabilities"


def _plain(value: Any) -> Any:
    """JSON-able copy (numpy scalars and arrays to Python)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


@lru_cache(maxsize=1)
def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {"python": platform.python_version()}
    for name in ("fedsim", "torch", "numpy", "scikit-learn", "opacus"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found


def _status(path: Path) -> str | None:
    try:
        return load_record(path).get("status")
    except UserError:
        return None


def load_record(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise UserError(f"cannot read cell result {str(path)!r}: {exc}") from None


def _sweep_stale(folder: Path) -> None:
    """Remove temporary files a killed run left behind (whole files only are ever renamed into place)."""
    for path in folder.glob(".*.tmp"):
        path.unlink(missing_ok=True)


# ---- the results table: one row per (cell, attack); AUC cells give one row each ----

LEADING = ["kind", "cell", "status", "error", "dataset", "task", "parties", "runtime", "seed", "defense",
           "strength_param", "strength", "label_defense", "gradient_defense", "epsilon", "delta",
           "formal_epsilon", "formal_delta", "attack", "known_fraction", "known_labels", "n_attacked"]


def result_rows(record: dict[str, Any]) -> list[dict[str, Any]]:
    base = {"kind": record["kind"], "cell": record["key"], "status": record["status"],
            "error": record.get("error"), "dataset": record["labels"].get("dataset"),
            "task": record["labels"].get("task"), "cell_s": record.get("cell_s"),
            **{f"version_{k}": v for k, v in record.get("versions", {}).items()}}
    if record["kind"] == "auc":
        return [{**base, **_auc_columns(record)}]
    config = record["config"]["train"]
    base.update(
        parties=config["parties"], runtime=config["runtime"], seed=config["seed"],
        defense=record["labels"]["defense"], strength_param=record["labels"]["strength_param"],
        strength=_number(record["labels"]["strength"]), label_defense=config["label_defense"],
        gradient_defense=config["gradient_defense"], epsilon=config["epsilon"], delta=config["delta"],
        defense_params=json.dumps(config["defense_params"], sort_keys=True), epochs=config["epochs"],
        batch_size=config["batch_size"], lr=config["lr"],
    )
    train = record.get("train")
    if train:
        base.update(n_train=train["n_train"], n_test=train["n_test"], train_s=train["train_s"],
                    steps=train["steps"], formal_epsilon=train["privacy"]["epsilon"],
                    formal_delta=train["privacy"]["delta"], guarantee=train["privacy"]["guarantee"],
                    **{f"test_{k}": v for k, v in train["metrics"].items()})
    attack_runs = record.get("attacks") or [{"spec": s} for s in record["config"]["attacks"]]
    rows = []
    for run in attack_runs:
        spec, outcome = run["spec"], run.get("result") or {}
        row = {**base, "attack": spec["name"], "known_fraction": spec["known_fraction"],
               "attack_party": spec["party"], "attack_params": json.dumps(spec["params"], sort_keys=True)}
        if "error" in run:
            row["error"] = run["error"]
        if outcome:
            row.update(known_labels=outcome.get("known_labels"), n_attacked=outcome.get("n_attacked"),
                       baseline_mean_mse=outcome.get("baseline_mean_mse"),
                       attack_s=(outcome.get("timing") or {}).get("attack_s"),
                       **{f"attack_{k}": v for k, v in (outcome.get("metrics") or {}).items()},
                       **{f"readout_{name}_{k}": v for name, metrics in (outcome.get("readouts") or {}).items()
                          for k, v in metrics.items()})
        rows.append(row)
    return rows


def _auc_columns(record: dict[str, Any]) -> dict[str, Any]:
    config, outcome = record["config"], record.get("auc") or {}
    ci = outcome.get("ci95") or [None, None]
    return {
        "seed": config["seed"], "method": config["method"], "epsilon": config["epsilon"],
        "delta": config["delta"], "clients": config["clients"], "buckets": config["buckets"],
        "thresholds": config["thresholds"], "split": config["split"], "repeats": config["repeats"],
        "formal_epsilon": outcome.get("epsilon"), "formal_delta": outcome.get("delta"),
        "n": outcome.get("n"), "estimate": outcome.get("estimate"), "ci_low": ci[0], "ci_high": ci[1],
        "exact": outcome.get("exact"), "bias": outcome.get("bias"), "std": outcome.get("std"),
        "rmse": outcome.get("rmse"), "ci_coverage": outcome.get("ci_coverage"), "auc_s": record.get("auc_s"),
        "score_model": record.get("score_model"),
    }


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def results_frame(records: list[dict[str, Any]]):
    import pandas as pd

    rows = [row for record in records for row in result_rows(record)]
    frame = pd.DataFrame(rows)
    ordered = [c for c in LEADING if c in frame.columns]
    return frame[ordered + [c for c in frame.columns if c not in ordered]]


def write_results(out: Path, records: list[dict[str, Any]]) -> Path:
    """results.parquet and results.csv, each written to a temporary name and renamed into place."""
    frame = results_frame(records)
    path = out / RESULTS
    for target, writer in ((path, lambda p: frame.to_parquet(p, index=False)),
                           (out / "results.csv", lambda p: frame.to_csv(p, index=False))):
        write_atomic(target, writer)
    return path


def write_atomic(path: Path, writer: Callable[[Path], None]) -> None:
    """Let `writer` fill a temporary sibling of `path`, then rename it into place (all or nothing)."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        writer(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
