"""Computing one grid cell into a JSON record: train once and run its attacks, or evaluate one AUC method.

A cell never raises: any error becomes a `failed` record with its message and traceback, so one bad cell
does not stop a grid and a re-run retries it. An attack that refuses the cell's defence as one it cannot model
(`NotApplicable`) is recorded as not applicable with its one-line reason: not a failure, so the cell stays `ok`
and a re-run does not retry it.
"""

from __future__ import annotations

import json
import platform
import time
import traceback
import warnings
from functools import lru_cache
from pathlib import Path
from typing import Any

from fedsim.attacks import evaluate_attack
from fedsim.attacks.evaluate import ReferenceCache
from fedsim.audit import audit_training
from fedsim.config import TrainConfig
from fedsim.errors import NotApplicable, UserError, first_line
from fedsim.evaluation import run_auc
from fedsim.experiments.expansion import config_hash
from fedsim.experiments.scores import auc_scores
from fedsim.fileio import to_jsonable
from fedsim.threads import torch_threads
from fedsim.training import train


def run_cell(kind: str, config: dict[str, Any], labels: dict[str, Any]) -> dict[str, Any]:
    """Compute one cell; never raises: an error becomes a `failed` record with its message. Warnings raised
    while it runs (fedsim's and third-party libraries') are kept in the record's `warnings`, not printed: the
    runner writes them to the grid's run.log, so a parallel grid's progress display stays readable."""
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")  # each distinct warning once per cell
        try:
            with torch_threads(1):  # cells are the unit of parallelism
                body = run_leakage(config) if kind == "leakage" else run_auc_cell(config)
        except Exception as exc:  # recorded with its traceback, so one cell cannot stop the grid
            record = failure_record(kind, config, labels, exc, time.perf_counter() - start)
            return record | {"warnings": _warning_lines(caught)}
    errors = [a["error"] for a in body.get("attacks", []) if "error" in a]
    record = _record_head(kind, config, labels, time.perf_counter() - start)
    record["warnings"] = _warning_lines(caught)
    record.update(body)
    record["status"] = "failed" if errors else "ok"
    record["error"] = f"attack failed: {errors[0]}" if errors else None
    return record


def _warning_lines(caught: list[warnings.WarningMessage]) -> list[str]:
    """Each distinct warning as one line, `Category: message (module:line)`."""
    lines = (f"{w.category.__name__}: {str(w.message).splitlines()[0] if str(w.message) else ''} "
             f"({Path(w.filename).name}:{w.lineno})" for w in caught)
    return list(dict.fromkeys(lines))


def failure_record(kind: str, config: dict[str, Any], labels: dict[str, Any], exc: BaseException,
                   seconds: float) -> dict[str, Any]:
    record = _record_head(kind, config, labels, seconds)
    record.update(status="failed", error=_describe(exc), traceback=_traceback(exc))
    return record


def _record_head(kind: str, config: dict[str, Any], labels: dict[str, Any], seconds: float) -> dict[str, Any]:
    return {"key": config_hash(config), "kind": kind, "config": config, "labels": labels,
            "cell_s": seconds, "versions": versions(), "host": platform.node()}


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


def _traceback(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc)[-6:])


def run_leakage(config: dict[str, Any]) -> dict[str, Any]:
    """Train once, then run every listed attack on the same transcript (fitting the features-only references
    once); with an audit, also a canary audit (a second training run, with canaries planted)."""
    result = train(TrainConfig(**config["train"]), record=True)
    references = ReferenceCache()
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
                seed=result.config.seed, references=references,
            )
            body["attacks"].append({"spec": spec, "result": to_jsonable(outcome)})
        except NotApplicable as exc:  # a correct refusal: the attack does not apply to this defence
            body["attacks"].append({"spec": spec, "not_applicable": first_line(exc)})
        except Exception as exc:  # recorded with its traceback; the cell's other attacks still run
            body["attacks"].append({"spec": spec, "error": _describe(exc), "traceback": _traceback(exc)})
    if config.get("audit"):
        audit = config["audit"]
        body["audit"] = to_jsonable(audit_training(
            TrainConfig(**config["train"]), attack=audit["attack"], canaries=audit["canaries"],
            confidence=audit["confidence"], seed=result.config.seed))
    return body


def run_auc_cell(config: dict[str, Any]) -> dict[str, Any]:
    """Release one private AUC of the source's fixed scores (the cell's seed drives the mechanism's noise)."""
    scores, labels, model = auc_scores(json.dumps(config["source"], sort_keys=True))
    start = time.perf_counter()
    outcome = run_auc(config["method"], scores, labels, config["epsilon"], delta=config["delta"],
                      buckets=config["buckets"], thresholds=config["thresholds"], clients=config["clients"],
                      split=config["split"], repeats=config["repeats"], seed=config["seed"], show_progress=False,
                      secure_aggregation=config.get("secure_aggregation", False),
                      min_clients=config.get("min_clients"), bucketing=config.get("bucketing", "mass"))
    return {"auc": to_jsonable(outcome), "auc_s": time.perf_counter() - start, "score_model": model}


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


def load_record(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise UserError(f"cannot read cell result {str(path)!r}: {exc}") from None
