"""The built wheel works on its own: installed into a fresh virtual environment (no editable install, no
source tree on the path), `fedsim demo` runs a tiny grid and the plugins are found through their entry points."""

from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TINY = """
name = "tiny"
[leakage]
datasets = ["diabetes"]
attacks = ["mean", {name = "model_completion", params = {steps = 10}}]
[leakage.training]
epochs = 1
batch_size = 128
[[leakage.defenses]]
label = "laplace"
epsilons = [2.0]
params = {low = 25, high = 346}
[auc]
sources = ["breast_cancer"]
methods = ["hist"]
epsilons = [1.0]
repeats = 2
"""


@pytest.mark.slow
def test_wheel_in_a_fresh_venv_runs_the_demo(tmp_path):
    # build from a clean copy: a stale build/ folder in the checkout could put deleted modules into the wheel
    source, wheels = tmp_path / "source", tmp_path / "wheels"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".git", "build", "dist", "*.egg-info", "__pycache__",
                                                                ".pytest_cache", ".ruff_cache", "results"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "-w", str(wheels), str(source)], check=True, cwd=tmp_path)
    wheel = next(wheels.glob("fedsim-*.whl"))
    # no source tree on the path: other tests (or the caller) may have put the checkout on PYTHONPATH
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, env=env)
    python, fedsim = venv / "bin" / "python", venv / "bin" / "fedsim"
    # The dependencies (torch, flwr, ...) come from this interpreter's site-packages, fedsim from the wheel only.
    # Not `--system-site-packages`: run from a virtualenv, that inherits the *base* interpreter's packages. A plain
    # path in a .pth file is appended to sys.path (after the venv's own site-packages) without running the .pth
    # files inside it, so this interpreter's editable install of fedsim stays invisible.
    venv_site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True, env=env).stdout.strip()
    Path(venv_site, "fedsim_test_dependencies.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    subprocess.run([python, "-m", "pip", "install", "--quiet", "--no-deps", "--force-reinstall", str(wheel)],
                   check=True, cwd=tmp_path, env=env)
    work = tmp_path / "work"
    work.mkdir()
    probe = ("import json, fedsim, fedsim.attacks, fedsim.defenses, fedsim.experiments; "
             "from fedsim.registry import ATTACKS, LABEL_DEFENSES; "
             "print(json.dumps({'file': fedsim.attacks.__file__, 'attacks': ATTACKS.names(), "
             "'defenses': LABEL_DEFENSES.names()}))")
    found = json.loads(subprocess.run([python, "-c", probe], check=True, cwd=work, capture_output=True,
                                      text=True, env=env).stdout)
    assert Path(found["file"]).is_relative_to(venv), found["file"]  # the wheel's copy, not the source tree
    assert {"lba", "mean"} <= set(found["attacks"]) and "laplace" in found["defenses"]
    for name in ("attacks", "defenses", "experiments"):  # no generic top-level names are claimed
        assert subprocess.run([python, "-c", f"import {name}"], cwd=work, capture_output=True, env=env).returncode != 0
    (work / "tiny.toml").write_text(TINY)
    run = subprocess.run([fedsim, "demo", "--grid", "tiny.toml", "--out", "demo", "--workers", "1", "--quiet",
                          "--json"], cwd=work, capture_output=True, text=True, timeout=600, env=env)
    assert run.returncode == 0, run.stderr
    summary = json.loads(run.stdout)
    assert summary["failed"] == 0 and summary["cells"] == 2
    assert (work / "demo" / "report.md").is_file()
