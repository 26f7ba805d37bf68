"""The report of a bench folder: `DIR/report.md` with tables per dataset and plots in `DIR/plots/`.

Its sections: label leakage under defences (`report_leakage`, with the Defense Capability Score of
classification studies from `report_classification`), private AUC (`report_auc`); a list of failed cells.
Tables and number formats: `report_markdown`.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from fedsim.errors import check
from fedsim.experiments.report_auc import auc_section
from fedsim.experiments.report_leakage import leakage_section
from fedsim.experiments.report_markdown import Report
from fedsim.experiments.report_setup import setup_section
from fedsim.fileio import write_atomic


def load_results(directory: Path) -> pd.DataFrame:
    path = Path(directory) / "results.parquet"
    check(path.is_file(), f"no results table in {str(directory)!r}; run `fedsim bench GRID --out DIR` first")
    return pd.read_parquet(path)



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
    failed = frame[frame["status"] != "ok"]
    report.failed_cells = int(failed["cell"].nunique())
    ok = frame[frame["status"] == "ok"]
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
    except (OSError, tomllib.TOMLDecodeError):
        return directory.name



def _failures(failed: pd.DataFrame) -> str:
    cells = failed.drop_duplicates("cell")
    lines = [f"## Failed cells ({len(cells)})\n", "Re-run the same `fedsim bench` command to retry them.\n"]
    for _, r in cells.head(20).iterrows():
        lines.append(f"- `{r['cell']}` {r['kind']} {r['dataset']}: {r['error']}")
    return "\n".join(lines) + "\n"
