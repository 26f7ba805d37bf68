"""Audit cells in grids: `[leakage.audit]` adds a canary audit to every leakage cell; the results and the
report show the empirical epsilon next to the formal one."""

from __future__ import annotations

import pandas as pd
import pytest

from fedsim.errors import UserError
from fedsim.experiments.expansion import expand
from fedsim.experiments.grid import load_grid
from fedsim.experiments.report import build_report
from fedsim.experiments.runner import run_grid

AUDITED = """
name = "audited"
[leakage]
datasets = [{name = "synthetic_ctr", rows = 600}]
seeds = [0]
attacks = ["norm_scoring"]
[leakage.training]
epochs = 2
record_last_epochs = 1
[leakage.audit]
canaries = 100
[[leakage.defenses]]
[[leakage.defenses]]
label = "rr"
epsilons = [1.0]
"""


def test_audit_cells_report_empirical_next_to_formal_epsilon(tmp_path):
    grid = tmp_path / "grid.toml"
    grid.write_text(AUDITED)
    out = tmp_path / "out"
    summary = run_grid(grid, out, show_progress=False)
    assert summary.failed == 0 and summary.cells == 2
    frame = pd.read_parquet(out / "results.parquet").set_index("defense")
    assert frame.loc["none", "audit_verdict"] == "no formal claim" and frame.loc["none", "empirical_epsilon"] > 2
    assert frame.loc["rr", "formal_epsilon"] == 1.0 and frame.loc["rr", "audit_canaries"] == 100
    assert frame.loc["rr", "audit_verdict"] in ("consistent", "violation")
    text = build_report(out).path.read_text()
    assert "empirical ε (audit, 95%)" in text and "violations" in text


def test_audit_changes_only_the_audited_cells_keys(tmp_path):
    plain, audited = tmp_path / "plain.toml", tmp_path / "audited.toml"
    audited.write_text(AUDITED)
    plain.write_text(AUDITED.replace("[leakage.audit]\ncanaries = 100\n", ""))
    keys = {c.key for c in expand(load_grid(plain)[0])}
    audited_cells = expand(load_grid(audited)[0])
    assert not keys & {c.key for c in audited_cells}
    assert all(c.config["audit"] == {"canaries": 100, "confidence": 0.95, "attack": None} for c in audited_cells)


@pytest.mark.parametrize("audit,fragment", [('attack = "residual"', "does not apply to binary"),
                                            ("confidence = 1.5", "confidence"), ("canaries = 0", "canaries")])
def test_bad_audit_entries_fail_before_any_work(tmp_path, audit, fragment):
    grid = tmp_path / "grid.toml"
    grid.write_text(AUDITED.replace("canaries = 100", audit))
    with pytest.raises(UserError, match=fragment):
        expand(load_grid(grid)[0])
