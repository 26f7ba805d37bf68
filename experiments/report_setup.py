"""The report's set-up section: everything a reader needs to rerun or judge the study, from the results table
and the grid file the bench folder keeps (`grid.toml`, written by `fedsim bench`)."""

from __future__ import annotations

import hashlib
import tomllib
from pathlib import Path
from typing import Any

import pandas as pd

from fedsim.config import ModelConfig
from fedsim.experiments.report_markdown import markdown_table

# results columns -> the set-up row that lists their distinct values
LEAKAGE_COLUMNS = {"dataset": "data", "parties": "feature parties", "batch_size": "batch size", "lr": "learning rate",
                   "epochs": "epochs", "runtime": "runtime", "known_fraction": "known labels (fraction)",
                   "known_labels": "known labels (count)", "defense_params": "defence parameters (clip ranges)",
                   "seed": "seeds"}
AUC_COLUMNS = {"dataset": "score source", "n": "rows", "method": "methods", "clients": "clients",
               "split": "client split", "repeats": "releases per cell", "seed": "seeds"}


def setup_section(directory: Path, frame: pd.DataFrame) -> str:
    """A table of the study's settings: each one's distinct values over the report's cells."""
    grid = directory / "grid.toml"
    spec = _grid(grid)
    rows = [["grid file", f"`{grid}` (sha256 {_digest(grid)})" if grid.is_file() else "missing"]]
    leakage = frame[frame["kind"] == "leakage"]
    if len(leakage):
        rows += _distinct(leakage, LEAKAGE_COLUMNS)
        rows.append(["rows (train / test)", _values(leakage["n_train"].astype("Int64").astype(str) + " / "
                                                    + leakage["n_test"].astype("Int64").astype(str))
                     if {"n_train", "n_test"} <= set(leakage.columns) else "—"])
        training = spec.get("leakage", {}).get("training", {}) if isinstance(spec.get("leakage"), dict) else {}
        recorded = training.get("record_last_epochs")
        rows.append(["recorded epochs (transcript)", "all" if recorded is None else f"the last {recorded}"])
        model = {**ModelConfig().model_dump(), **training.get("model", {})}
        rows.append(["model", ", ".join(f"{k}={v}" for k, v in model.items())])
        rows.append(["split", "the train/test split of `fedsim train` (by seed); attacks score training rows "
                              "they did not know"])
    auc = frame[frame["kind"] == "auc"]
    if len(auc):
        rows += [[f"AUC: {name}", value] for name, value in _distinct(auc, AUC_COLUMNS)]
    versions = sorted(c for c in frame.columns if c.startswith("version_"))
    rows.append(["package versions", ", ".join(f"{c.removeprefix('version_')} {_values(frame[c])}"
                                               for c in versions) or "not recorded"])
    return "## Set-up\n\n" + markdown_table(["setting", "value(s)"], rows) + "\n"


def _distinct(frame: pd.DataFrame, columns: dict[str, str]) -> list[list[str]]:
    return [[name, _values(frame[column])] for column, name in columns.items() if column in frame.columns]


def _values(series: pd.Series) -> str:
    values = sorted({f"{v:g}" if isinstance(v, float) else str(v) for v in series.dropna()})
    return ", ".join(values).replace("|", "\\|") if values else "—"


def _grid(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text())
    except (OSError, ValueError):  # unreadable, not UTF-8 (UnicodeDecodeError) or not TOML
        return {}


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]
