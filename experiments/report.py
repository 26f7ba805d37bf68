"""The report of a bench folder: `DIR/report.md` with tables per dataset and plots in `DIR/plots/`.

Its sections: label leakage under defences (`report_leakage`, with the Defense Capability Score of
classification studies from `report_classification`), private AUC (`report_auc`); a list of failed cells.
Tables and number formats: `report_markdown`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from fedsim.errors import UserError, check, first_line
from fedsim.experiments.report_auc import auc_section
from fedsim.experiments.report_leakage import leakage_section
from fedsim.experiments.report_markdown import Report
from fedsim.experiments.report_setup import setup_section
from fedsim.experiments.results import NOT_APPLICABLE
from fedsim.fileio import write_atomic

# the columns each kind of row always has (`fedsim.experiments.results.result_rows`) that the sections read
COLUMNS = {"": ("kind", "cell", "status", "error", "dataset", "task"),
           "auc": ("method", "epsilon", "clients", "repeats", "n", "exact", "bias", "std", "rmse", "ci_coverage"),
           "leakage": ("parties", "seed", "defense", "strength", "formal_epsilon", "attack", "known_fraction")}
TEXT = {"kind", "cell", "status", "error", "dataset", "task", "method", "defense", "attack"}
STATUSES = ("ok", "failed", NOT_APPLICABLE)


def load_results(directory: Path) -> pd.DataFrame:
    """DIR/results.parquet, refused in one line when it is unreadable or not a `fedsim bench` table: a
    damaged table must not be reported as if it held results. Every check reads the table only."""
    directory = Path(directory)
    path = directory / "results.parquet"
    check(path.is_file(), f"no results table in {str(directory)!r}; run `fedsim bench GRID --out DIR` first")
    rerun = f"re-run `fedsim bench GRID --out {directory}` to rewrite it from the finished cells"
    try:
        frame = pd.read_parquet(path)
    except (OSError, ValueError, ImportError) as exc:  # pyarrow's errors derive from these
        raise UserError(f"{str(path)!r} is not a readable results table ({first_line(exc)}); {rerun}") from None
    _check_table(frame, path, rerun)
    for name, kind in (("plots", "folder"), ("report.md", "file")):
        target = directory / name
        check(not target.exists() or target.is_dir() == (kind == "folder"),
              f"{str(target)!r} is in the way: the report writes a {kind} there; move it and re-run `fedsim report`")
    return frame


def _check_table(frame: pd.DataFrame, path: Path, rerun: str) -> None:
    """The columns and values every row of a bench table has."""
    def need(rows: pd.DataFrame, columns: tuple[str, ...], what: str) -> None:
        missing = [c for c in columns if c not in rows.columns]
        check(not missing, f"{str(path)!r} is not a fedsim bench table: {what} lack "
                           f"{', '.join(map(repr, missing))}; {rerun}")

    need(frame, COLUMNS[""], "its rows")
    check(len(frame) > 0, f"{str(path)!r} has no rows; {rerun}")
    for column, allowed in (("kind", tuple(k for k in COLUMNS if k)), ("status", STATUSES)):
        bad = sorted({str(v) for v in frame[column] if v not in allowed})
        check(not bad, f"{str(path)!r}: column {column!r} holds {', '.join(map(repr, bad[:3]))}; allowed: "
                       f"{', '.join(allowed)}; {rerun}")
    for kind in ("auc", "leakage"):
        ok = frame[(frame["kind"] == kind) & (frame["status"] == "ok")]
        if len(ok):
            need(ok, COLUMNS[kind], f"its {kind} rows")
            for column in (c for c in COLUMNS[kind] if c not in TEXT):
                values = ok[column]
                numeric = pd.api.types.is_numeric_dtype(values) or values.isna().all()
                check(numeric and not values.isin([np.inf, -np.inf]).any(),
                      f"{str(path)!r}: column {column!r} of its {kind} rows must hold finite numbers; {rerun}")



def build_report(directory: Path) -> Report:
    """Write report.md and the plots; return their paths and the headline numbers."""
    import matplotlib

    matplotlib.use("Agg")
    directory = Path(directory)
    frame = load_results(directory)
    plots_dir = directory / "plots"
    plots_dir.mkdir(exist_ok=True)
    report = Report(directory / "report.md")
    grid_name = _grid_name(directory)
    parts = [f"# fedsim report: {grid_name}\n",
             f"From `{directory / 'results.parquet'}` ({frame['cell'].nunique()} cells). "
             "Values are mean ± std over seeds.\n", setup_section(directory, frame)]
    failed = frame[frame["status"] == "failed"]
    report.failed_cells = int(failed["cell"].nunique())
    ok = frame[frame["status"] != "failed"]  # not-applicable attack rows stay: the tables show them as n/a
    leakage = ok[ok["kind"] == "leakage"]
    if len(leakage):
        parts.append("## Label leakage under defences\n")
        # a run with an active (malicious) feature party is a setting of its own, not a seed of the honest one
        active = leakage.get("malicious_update_scale", pd.Series(1.0, index=leakage.index)).fillna(1.0)
        for (dataset, parties, _), group in leakage.groupby(["dataset", "parties", active], sort=True):
            parts.append(leakage_section(group, str(dataset), int(parties), plots_dir, report))
    auc = ok[ok["kind"] == "auc"]
    if len(auc):
        parts.append("## Private AUC\n")
        for source, group in auc.groupby("dataset", sort=True):
            parts.append(auc_section(group, str(source), plots_dir, report))
    if report.failed_cells:
        parts.append(_failures(failed))
    text = "\n".join(parts)
    write_atomic(report.path, lambda p: p.write_text(text))
    return report



def _grid_name(directory: Path) -> str:
    import tomllib

    try:
        return str(tomllib.loads((directory / "grid.toml").read_text()).get("name", directory.name))
    except (OSError, ValueError):  # unreadable, not UTF-8 or not TOML: the folder's name
        return directory.name



def _failures(failed: pd.DataFrame) -> str:
    cells = failed.drop_duplicates("cell")
    lines = [f"## Failed cells ({len(cells)})\n", "Re-run the same `fedsim bench` command to retry them.\n"]
    for _, r in cells.head(20).iterrows():
        lines.append(f"- `{r['cell']}` {r['kind']} {r['dataset']}: {r['error']}")
    return "\n".join(lines) + "\n"
