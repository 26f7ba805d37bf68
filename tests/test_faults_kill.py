"""Fault injection (issue 21): `kill -9` at seeded random points of `fedsim train --transcript`, `fedsim bench`
and `fedsim audit train` (local runtime), then the same command again: it succeeds, nothing partial is left
(no `.NAME.partial-*` staging folder, no `.tmp` cell file, no lock), and its output equals an uninterrupted
run's (train and audit: the JSON result but its timings; bench: the results table but its timing columns).
SIGKILL cannot be caught, so this is what a crash, an OOM kill or a pulled plug leaves behind."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

pytestmark = pytest.mark.slow

KILLS = 2  # kill points per command
SEED = 21
TIMING = {"timing", "train_s", "per_step_ms", "cell_s", "auc_s", "attack_s", "wall_s"}

TRAIN = ["train", "--dataset", "synthetic_regression", "--rows", "3000", "--epochs", "4", "--json", "--quiet"]
AUDIT = ["audit", "train", "--canaries", "20", "--epochs", "1", "--json", "--quiet"]
GRID = """name = "kill"
[leakage]
datasets = ["diabetes"]
attacks = ["mean"]
training = {epochs = 1, record_last_epochs = 1}
defenses = [{}, {label = "laplace", epsilons = [1.0], params = {bounds_share = 0.1}}]
[auc]
sources = ["breast_cancer"]
methods = ["rr", "hist"]
epsilons = [1.0, 4.0]
repeats = 3
"""


def fedsim(args: list[str], cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "fedsim", *args], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def finish(args: list[str], cwd: Path) -> tuple[str, float]:
    """Run to the end; stdout and the wall time. It must succeed without a traceback."""
    start = time.monotonic()
    process = fedsim(args, cwd)
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0 and "Traceback" not in err, err[-2000:]
    return out, time.monotonic() - start


def kill_at(args: list[str], cwd: Path, delay: float) -> bool:
    """Start the command and SIGKILL it after `delay` seconds; False when it ended first."""
    process = fedsim(args, cwd)
    try:
        process.communicate(timeout=delay)
        return False
    except subprocess.TimeoutExpired:
        os.kill(process.pid, signal.SIGKILL)
        process.communicate(timeout=60)
        return True


def without_timing(value):
    if isinstance(value, dict):
        return {k: without_timing(v) for k, v in value.items() if k not in TIMING}
    return value


def leftovers(folder: Path) -> list[str]:
    """Staging folders, temporary files and locks anywhere under `folder`."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob(".*")
                  if ".partial-" in p.name or p.name.endswith(".tmp") or p.name == ".fedsim.lock")


def delays(total: float, salt: str) -> list[float]:
    """KILLS seeded points spread over the command's run (the first second is mostly Python starting up)."""
    rng = random.Random(f"{SEED}-{salt}")
    return sorted(rng.uniform(1.0, max(1.5, total)) for _ in range(KILLS))


def test_kill_9_during_train_transcript(tmp_path):
    reference, total = finish([*TRAIN, "--transcript", "ref"], tmp_path)
    killed = []
    for delay in delays(total, "train"):
        killed.append(kill_at([*TRAIN, "--transcript", "t"], tmp_path, delay))
        again, _ = finish([*TRAIN, "--transcript", "t", "--overwrite"], tmp_path)  # sweeps what the kill left
        assert not leftovers(tmp_path), (delay, leftovers(tmp_path))
        expected, got = json.loads(reference), json.loads(again)
        assert without_timing({**got, "transcript": None}) == without_timing({**expected, "transcript": None})
        assert sorted(p.name for p in (tmp_path / "t").iterdir()) == sorted(p.name for p in
                                                                            (tmp_path / "ref").iterdir())
    assert any(killed)


def test_kill_9_during_audit_train(tmp_path):
    reference, total = finish(AUDIT, tmp_path)
    killed = []
    for delay in delays(total, "audit"):
        killed.append(kill_at(AUDIT, tmp_path, delay))
        again, _ = finish(AUDIT, tmp_path)
        assert without_timing(json.loads(again)) == without_timing(json.loads(reference))
        assert not list(tmp_path.iterdir())  # an audit writes nothing, killed or not
    assert any(killed)


def results(out: Path) -> pd.DataFrame:
    table = pd.read_parquet(out / "results.parquet")
    return table.drop(columns=[c for c in table.columns if c in TIMING or c.endswith("_s")])


def test_kill_9_during_bench(tmp_path):
    grid = tmp_path / "grid.toml"
    grid.write_text(GRID)
    _, total = finish(["bench", str(grid), "--out", "ref", "--workers", "1", "--quiet"], tmp_path)
    reference = results(tmp_path / "ref")
    killed = []
    for index, delay in enumerate(delays(total, "bench")):
        out = f"out{index}"
        killed.append(kill_at(["bench", str(grid), "--out", out, "--workers", "1", "--quiet"], tmp_path, delay))
        finish(["bench", str(grid), "--out", out, "--workers", "1", "--quiet"], tmp_path)  # resumes
        assert not leftovers(tmp_path / out), leftovers(tmp_path / out)
        pd.testing.assert_frame_equal(results(tmp_path / out), reference)
    assert any(killed)
