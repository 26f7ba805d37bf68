"""The side process of `fedsim attack`: same numbers as in-process, errors and a dead worker handled, and the
attack's own process never imports scikit-learn (the import runs on the other core)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from fedsim.cli.app import main
from fedsim.side_process import SideProcess, fork_available

needs_fork = pytest.mark.skipif(not fork_available(), reason="no fork on this platform: the work runs in-process")


@needs_fork
def test_the_work_runs_in_the_worker_and_errors_come_back():
    with SideProcess(("json",)) as side:
        assert side.run(os.getpid) != os.getpid()
        with pytest.raises(ValueError, match="invalid literal"):
            side.run(int, "not a number")
        assert side.run(sum, [1, 2, 3]) == 6  # the worker still serves after an error


def test_without_a_worker_the_work_runs_here():
    with SideProcess(enabled=False) as side:
        assert side.run(os.getpid) == os.getpid()


@needs_fork
def test_a_dead_worker_falls_back_to_the_main_process():
    with SideProcess() as side:
        side._process.kill()
        side._process.join(timeout=10)
        assert side.run(os.getpid) == os.getpid()


@needs_fork
def test_leaving_on_an_error_does_not_wait_for_the_worker():
    """Even when the caller has a SIGTERM handler that does not exit (the fork inherits it until the worker
    starts; under pytest, handlers of earlier tests stay installed), leaving ends the worker at once."""
    before = signal.signal(signal.SIGTERM, lambda *_: None)
    try:
        for _ in range(5):
            started = time.perf_counter()
            with pytest.raises(KeyboardInterrupt), SideProcess() as side:
                side.submit(time.sleep, 60)
                raise KeyboardInterrupt
            assert time.perf_counter() - started < 30
            assert not side._process.is_alive()
    finally:
        signal.signal(signal.SIGTERM, before)


@needs_fork
def test_attack_scores_in_the_side_process_with_the_in_process_numbers(tmp_path, capsys, monkeypatch):
    folder = tmp_path / "t"
    assert main(["train", "--dataset", "diabetes", "--epochs", "3", "--transcript", str(folder), "--quiet"]) == 0
    command = ["attack", "--transcript", str(folder), "--attack", "residual", "--json", "--quiet"]
    probe = ("import json, sys; from fedsim.cli.app import main; code = main(sys.argv[1:]); "
             "print(json.dumps(sorted(m for m in ('sklearn', 'scipy.stats') if m in sys.modules)))")
    done = subprocess.run([sys.executable, "-c", probe, *command], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    side_out, imported = done.stdout.strip().splitlines()
    assert json.loads(imported) == []  # scikit-learn and scipy.stats loaded in the worker only
    capsys.readouterr()
    monkeypatch.setattr("fedsim.side_process.fork_available", lambda: False)
    assert main(command) == 0
    here = json.loads(capsys.readouterr().out)
    there = json.loads(side_out)
    for out in (here, there):
        out.pop("timing")
    assert there == here
    assert set(there["references"]) == {"known_mean", "features_ridge", "features_gbt", "embeddings_ridge",
                                        "model_completion"}
