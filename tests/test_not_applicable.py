"""An attack that cannot model a cell's defence is recorded as not applicable: the cell is ok, the report shows
n/a with the reason, a re-run does not retry it; any other error of an attack still fails the cell."""

from __future__ import annotations

import pandas as pd

from fedsim.errors import UserError
from fedsim.experiments import cells
from fedsim.experiments.report import build_report
from fedsim.experiments.runner import run_grid

GRID = """
name = "na"
[leakage]
datasets = [{ name = "synthetic_multiclass", rows = 400 }]
seeds = [0]
attacks = [{ name = "direct_label_inference", known_fractions = [0.1] }, { name = "bayes", known_fractions = [0.1] }]
training = { epochs = 2, batch_size = 64 }
defenses = [{}, { gradient = "cae", sweep = { param = "confusion", values = [1.0] } }]
"""


def run(tmp_path, name):
    grid = tmp_path / "grid.toml"
    grid.write_text(GRID)
    return run_grid(grid, tmp_path / name, workers=1, show_progress=False)


def bayes_columns(report: str) -> list[dict[str, str]]:
    """Per markdown table of the report with a bayes column: defence -> that column's cell."""
    tables, header = [], None
    for line in report.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")] if line.startswith("|") else None
        if cells is None or line.startswith("|---"):
            header = None if cells is None else header
            continue
        if header is None:
            header = cells
            column = next((i for i, h in enumerate(header) if h.startswith("bayes")), None)
            if column is not None:
                tables.append({})
            continue
        if column is not None:
            tables[-1][cells[0]] = cells[column]
    return tables


def test_bayes_under_cae_is_not_applicable_shown_na_and_not_rerun(tmp_path):
    first = run(tmp_path, "out")
    assert (first.computed, first.failed) == (2, 0)
    table = pd.read_parquet(first.results)
    bayes = table[table["attack"] == "bayes"].set_index("defense")
    assert bayes.loc["cae", "status"] == "not_applicable" and pd.isna(bayes.loc["cae", "attack_accuracy"])
    assert "cannot model gradient defence 'cae'" in bayes.loc["cae", "not_applicable_reason"]
    assert bayes.loc["none", "status"] == "ok" and bayes.loc["none", "attack_accuracy"] > 0.5
    assert (table[table["attack"] != "bayes"]["status"] == "ok").all()
    text = build_report(first.results.parent).path.read_text()
    tables = bayes_columns(text)  # advantage, raw accuracy, DCS
    assert len(tables) == 3 and all(t["cae"] == "n/a" for t in tables)
    assert all(t["none"] not in ("n/a", "—") for t in tables)
    assert "- bayes n/a under cae: attack 'bayes' cannot model gradient defence 'cae'" in text
    assert "Failed cells" not in text
    second = run(tmp_path, "out")
    assert (second.computed, second.skipped, second.failed) == (0, 2, 0)


def test_an_attack_that_applies_nowhere_is_noted(tmp_path, capsys):
    grid = tmp_path / "grid.toml"
    grid.write_text(GRID.replace("defenses = [{}, ", "defenses = ["))
    summary = run_grid(grid, tmp_path / "out", workers=1, show_progress=False)
    assert summary.failed == 0
    assert ("fedsim: note: attack 'bayes' did not apply to any cell: attack 'bayes' cannot model gradient defence "
            "'cae'") in capsys.readouterr().err


def test_another_error_of_the_attack_still_fails_the_cell(tmp_path, monkeypatch):
    real = cells.evaluate_attack

    def refuse(view, y, name, **kwargs):
        if name == "bayes":
            raise UserError("attack 'bayes' needs the epsilon of 'rr'")  # a plain UserError: a real failure
        return real(view, y, name, **kwargs)

    monkeypatch.setattr(cells, "evaluate_attack", refuse)
    summary = run(tmp_path, "failed")
    assert summary.failed == 2
    table = pd.read_parquet(summary.results)
    assert (table["status"] == "failed").all() and "not_applicable_reason" not in table
    assert "## Failed cells (2)" in build_report(summary.results.parent).path.read_text()
