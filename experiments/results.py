"""The results table of a grid: one row per (cell, attack), AUC cells one row each; parquet and CSV.

Leakage rows carry the attack's metrics (`attack_r2`, ..., `attack_advantage`: over the best features-only
reference), the name of that reference (`advantage_reference`) and every reference's metrics on the same
samples (`reference_<name>_<metric>`, `fedsim.attacks.baselines`); classification rows add `advantage_scoring`
(matched or raw), `relabelled`, and under a pure eps-label-DP release `accuracy_bound`, `advantage_bound` and
`exceeds_bound` (`fedsim.attacks.evaluate`). An attack that does not apply to the cell's defence (`NotApplicable`)
gives a row with status `not_applicable` and its one-line reason in `not_applicable_reason`, and no metrics.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fedsim.fileio import write_atomic

RESULTS = "results.parquet"
NOT_APPLICABLE = "not_applicable"  # the status of an attack's row when it cannot model the cell's defence

LEADING = ["kind", "cell", "status", "error", "dataset", "task", "parties", "runtime", "seed", "defense",
           "strength_param", "strength", "label_defense", "gradient_defense", "epsilon", "delta",
           "formal_epsilon", "formal_delta", "empirical_epsilon", "audit_verdict", "attack", "known_fraction",
           "known_labels", "n_attacked", "attack_advantage", "advantage_reference", "advantage_bound", "exceeds_bound"]
SCORING = ("advantage_scoring", "relabelled", "accuracy_bound", "advantage_bound", "exceeds_bound")


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
    if config.get("malicious_update_scale", 1.0) != 1.0:  # an active feature party: only then these columns
        base.update(malicious_party=config.get("malicious_party", 0),
                    malicious_update_scale=config["malicious_update_scale"])
    train = record.get("train")
    if train:
        base.update(n_train=train["n_train"], n_test=train["n_test"], train_s=train["train_s"],
                    steps=train["steps"], formal_epsilon=train["privacy"]["epsilon"],
                    formal_delta=train["privacy"]["delta"], guarantee=train["privacy"]["guarantee"],
                    **{f"test_{k}": v for k, v in train["metrics"].items()})
    audit = record.get("audit")
    if audit:
        base.update(empirical_epsilon=audit["empirical_epsilon"], audit_verdict=audit["verdict"],
                    audit_confidence=audit["confidence"], audit_canaries=audit["canaries"],
                    audit_guesses=audit["guesses"], audit_correct=audit["correct"], audit_attack=audit["attack"])
    attack_runs = record.get("attacks") or [{"spec": s} for s in record["config"]["attacks"]]
    rows = []
    for run in attack_runs:
        spec, outcome = run["spec"], run.get("result") or {}
        row = {**base, "attack": spec["name"], "known_fraction": spec["known_fraction"],
               "attack_party": spec["party"], "attack_params": json.dumps(spec["params"], sort_keys=True)}
        if "error" in run:
            row["error"] = run["error"]
        if "not_applicable" in run:  # a failed cell's rows stay failed: its other attacks are retried
            row.update(status=NOT_APPLICABLE if record["status"] == "ok" else record["status"],
                       not_applicable_reason=run["not_applicable"])
        if outcome:
            row.update(known_labels=outcome.get("known_labels"), n_attacked=outcome.get("n_attacked"),
                       baseline_mean_mse=outcome.get("baseline_mean_mse"),
                       attack_s=(outcome.get("timing") or {}).get("attack_s"),
                       **{f"attack_{k}": v for k, v in (outcome.get("metrics") or {}).items()},
                       **{f"readout_{name}_{k}": v for name, metrics in (outcome.get("readouts") or {}).items()
                          for k, v in metrics.items()},
                       **_reference_columns(outcome))
        rows.append(row)
    return rows


def _reference_columns(outcome: dict[str, Any]) -> dict[str, Any]:
    """`advantage_reference`, the classification scoring facts (SCORING) and each reference's numeric metrics as
    `reference_<name>_<metric>`."""
    columns: dict[str, Any] = {"advantage_reference": outcome.get("advantage_reference"),
                               **{k: outcome[k] for k in SCORING if k in outcome}}
    for name, scored in (outcome.get("references") or {}).items():
        columns.update({f"reference_{name}_{k}": v for k, v in scored.items()
                        if isinstance(v, int | float) and not isinstance(v, bool)})
    return columns


def _auc_columns(record: dict[str, Any]) -> dict[str, Any]:
    config, outcome = record["config"], record.get("auc") or {}
    ci = outcome.get("ci95") or [None, None]
    return {
        "seed": config["seed"], "method": config["method"], "epsilon": config["epsilon"],
        "delta": config["delta"], "clients": config["clients"], "buckets": config["buckets"],
        "thresholds": config["thresholds"], "split": config["split"], "repeats": config["repeats"],
        "secure_aggregation": bool(config.get("secure_aggregation", False)),
        "bucketing": config.get("bucketing", "mass"),
        "formal_epsilon": outcome.get("epsilon"), "formal_delta": outcome.get("delta"),
        "n": outcome.get("n"), "estimate": outcome.get("estimate"), "ci_low": ci[0], "ci_high": ci[1],
        "exact": outcome.get("exact"), "bias": outcome.get("bias"), "std": outcome.get("std"),
        "rmse": outcome.get("rmse"), "ci_coverage": outcome.get("ci_coverage"), "auc_s": record.get("auc_s"),
        "score_model": record.get("score_model"),
    }


def _number(value: Any) -> float | None:
    """A defence strength as a number; None where there is none or it is not numeric (a swept name)."""
    if not isinstance(value, int | float | str):
        return None
    try:
        return float(value)
    except ValueError:
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
