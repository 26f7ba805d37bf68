"""The runner: one row per (cell, attack), resume, failures recorded, kill-and-resume, report, demo smoke."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from fedsim.cli.app import main
from fedsim.experiments import cells
from fedsim.experiments.expansion import expand
from fedsim.experiments.grid import load_grid
from fedsim.experiments.report import build_report
from fedsim.experiments.report_leakage import pareto_mask
from fedsim.experiments.runner import run_grid

ROOT = Path(__file__).resolve().parents[1]

TINY = """
name = "tiny"
[leakage]
datasets = ["diabetes"]
seeds = [0, 1]
attacks = ["mean", {name = "model_completion", params = {steps = 20}}]
[leakage.training]
epochs = 2
batch_size = 128
record_last_epochs = 1
[leakage.training.model]
embedding_dim = 4
bottom_hidden = 8
top_hidden = 8
[[leakage.defenses]]
[[leakage.defenses]]
label = "laplace"
epsilons = [1.0, 8.0]
params = {bounds_share = 0.1}
[auc]
sources = ["breast_cancer"]
methods = ["rr", "hist"]
epsilons = [1.0, 4.0]
repeats = 5
"""


def grid_file(tmp_path: Path, text: str = TINY) -> Path:
    path = tmp_path / "grid.toml"
    path.write_text(text)
    return path


def cell_files(out: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in (out / "cells").glob("*.json")}


def test_run_resume_table_and_report(tmp_path):
    grid, out = grid_file(tmp_path), tmp_path / "out"
    summary = run_grid(grid, out, workers=1, show_progress=False)
    n_leak, n_auc = 6, 4
    assert (summary.cells, summary.computed, summary.skipped, summary.failed) == (n_leak + n_auc, 10, 0, 0)
    table = pd.read_parquet(summary.results)
    assert table.equals(table.drop_duplicates())
    leak = table[table["kind"] == "leakage"]
    assert len(leak) == n_leak * 2 and set(leak["attack"]) == {"mean", "model_completion"}
    assert leak.groupby("cell").size().eq(2).all()  # one training, every attack on its transcript
    assert leak["test_mse"].notna().all() and leak["attack_r2"].notna().all()
    laplace = leak[leak["defense"] == "laplace"]
    assert set(laplace["formal_epsilon"]) == {1.0, 8.0}
    assert leak[leak["defense"] == "none"]["formal_epsilon"].isna().all()
    auc = table[table["kind"] == "auc"]
    assert len(auc) == n_auc and auc["rmse"].notna().all() and (auc["exact"] > 0.9).all()
    assert pd.read_csv(out / "results.csv").shape[0] == len(table)

    before = cell_files(out)
    again = run_grid(grid, out, workers=1, show_progress=False)
    assert (again.computed, again.skipped) == (0, 10)
    assert cell_files(out) == before

    report = build_report(out)
    text = report.path.read_text()
    assert "### diabetes, 2 feature parties" in text and "| laplace | ε=1 |" in text
    assert "### breast_cancer" in text
    assert all(p.is_file() and p.stat().st_size > 1000 for p in report.plots) and len(report.plots) == 2
    assert any("no defence" in h for h in report.headlines)


def test_binary_leakage_report_uses_auc(tmp_path):
    text = ('name = "bin"\n[leakage]\ndatasets = ["breast_cancer"]\nattacks = ["norm_scoring", "mean"]\n'
            'training = {epochs = 2, record_last_epochs = 1}\n'
            'defenses = [{}, {label = "rr", epsilons = [1.0]}, {gradient = "max_norm"}]\n')
    out = tmp_path / "out"
    summary = run_grid(grid_file(tmp_path, text), out, workers=1, show_progress=False)
    table = pd.read_parquet(summary.results)
    assert summary.failed == 0 and table["test_auc"].notna().all() and table["attack_auc"].notna().all()
    text = build_report(out).path.read_text()
    assert "| defence | strength | formal ε | 1 - test AUC | mean AUC | norm_scoring AUC | seeds |" in text
    assert "max_norm (breast_cancer): advantage" in text and "| rr | ε=1 | 1.00 |" in text


def test_a_failing_cell_is_recorded_and_retried(tmp_path, monkeypatch):
    grid, out = grid_file(tmp_path, TINY.split("[auc]")[0]), tmp_path / "out"
    real = cells.run_leakage

    def flaky(config):
        if config["train"]["seed"] == 1:
            raise RuntimeError("worker lost its disk")
        return real(config)

    monkeypatch.setattr(cells, "run_leakage", flaky)
    first = run_grid(grid, out, workers=1, show_progress=False)
    assert first.failed == 3 and first.computed == 6
    table = pd.read_parquet(first.results)
    failed = table[table["status"] == "failed"]
    assert set(failed["seed"]) == {1} and failed["error"].str.contains("worker lost its disk").all()
    monkeypatch.setattr(cells, "run_leakage", real)
    second = run_grid(grid, out, workers=1, show_progress=False)
    assert (second.computed, second.skipped, second.failed) == (3, 3, 0)
    assert (pd.read_parquet(second.results)["status"] == "ok").all()


def test_warnings_in_cells_go_to_the_run_log_not_stderr(tmp_path, monkeypatch, capfd):
    grid, out = grid_file(tmp_path, TINY.split("[auc]")[0]), tmp_path / "out"
    real = cells.run_leakage

    def noisy(config):
        import warnings

        for _ in range(2):  # the same warning twice: logged once per cell
            warnings.warn("a library's deprecation notice", DeprecationWarning, stacklevel=1)
        return real(config)

    monkeypatch.setattr(cells, "run_leakage", noisy)
    summary = run_grid(grid, out, workers=1, show_progress=False)
    assert "deprecation notice" not in capfd.readouterr().err
    lines = (out / "run.log").read_text().splitlines()
    assert len(lines) == summary.computed
    assert all("DeprecationWarning: a library's deprecation notice" in line for line in lines)
    keys = {line.split()[0] for line in lines}
    assert keys == {path.stem for path in (out / "cells").glob("*.json")}


def test_kill_mid_grid_then_resume(tmp_path):
    """SIGKILL the runner after a few cells; the re-run recomputes no finished cell, the table is whole."""
    text = TINY.split("[auc]")[0].replace("seeds = [0, 1]", "seeds = [0, 1, 2, 3, 4, 5]")
    grid, out = grid_file(tmp_path, text), tmp_path / "out"
    total = len(expand(load_grid(grid)[0]))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen([sys.executable, "-m", "fedsim", "bench", str(grid), "--out", str(out),
                                "--workers", "1", "--quiet"], cwd=ROOT, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while (len(cell_files(out)) if (out / "cells").is_dir() else 0) < 2:
            assert process.poll() is None, "the runner ended before it could be killed"
            assert time.monotonic() < deadline, "no cell finished in time"
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
    finally:
        process.kill()
        process.wait()
    finished = cell_files(out)
    assert 2 <= len(finished) < total, "the kill should land mid-grid"
    assert not (out / "results.parquet").exists()
    for name in finished:  # every file present is whole
        assert json.loads((out / "cells" / name).read_text())["status"] == "ok"

    summary = run_grid(grid, out, workers=1, show_progress=False)
    assert (summary.skipped, summary.computed, summary.failed) == (len(finished), total - len(finished), 0)
    after = cell_files(out)
    assert {k: after[k] for k in finished} == finished  # no finished cell was recomputed
    assert not list((out / "cells").glob(".*"))  # no temporary file left
    table = pd.read_parquet(summary.results)
    assert len(table) == total * 2 and table["cell"].nunique() == total
    assert not table.duplicated(["cell", "attack", "known_fraction"]).any()


def test_demo_command_on_a_tiny_grid(tmp_path, capsys):
    out = tmp_path / "demo"
    code = main(["demo", "--out", str(out), "--grid", str(grid_file(tmp_path)), "--workers", "1", "--quiet"])
    stdout = capsys.readouterr().out
    assert code == 0
    assert (out / "report.md").is_file() and list((out / "plots").glob("*.png"))
    assert "report.md" in stdout and "no defence" in stdout


def test_bench_json_contract(tmp_path, capsys):
    code = main(["bench", str(grid_file(tmp_path, TINY.split("[auc]")[0])), "--out", str(tmp_path / "o"),
                 "--workers", "1", "--json", "--quiet"])
    payload = json.loads(capsys.readouterr().out)
    assert code == 0
    assert {"cells", "computed", "skipped", "failed", "results"} <= set(payload)
    assert payload["cells"] == payload["computed"] == 6 and Path(payload["results"]).is_file()


def test_an_unreachable_ray_cluster_is_one_line_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "o"
    code = main(["bench", str(grid_file(tmp_path)), "--out", str(out), "--ray-address", "127.0.0.1:1", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "127.0.0.1:1" in err
    assert not out.exists()


def test_report_without_results_is_a_user_error(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    assert "fedsim bench" in capsys.readouterr().err


def test_pareto_mask():
    x = [1.0, 2.0, 3.0, 2.5, 1.0]
    y = [0.9, 0.5, 0.1, 0.6, 0.95]
    assert pareto_mask(pd.Series(x).to_numpy(), pd.Series(y).to_numpy()).tolist() == [True, True, True, False,
                                                                                          False]


@pytest.mark.slow
def test_ray_workers_give_the_same_results(tmp_path):
    grid = grid_file(tmp_path)
    one = run_grid(grid, tmp_path / "one", workers=1, show_progress=False)
    two = run_grid(grid, tmp_path / "two", workers=2, show_progress=False)
    assert two.failed == 0
    columns = ["cell", "attack", "test_mse", "attack_r2", "rmse"]
    a = pd.read_parquet(one.results)[columns].sort_values(["cell", "attack"]).reset_index(drop=True)
    b = pd.read_parquet(two.results)[columns].sort_values(["cell", "attack"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)
