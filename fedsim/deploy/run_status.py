"""`flwr run` to the end, with an exit status that says whether the run succeeded.

Flower 1.42's `flwr run ... --stream` exits 0 once it has started the run and streamed its log, whatever the
run's outcome (a ServerApp that raised ends as `finished:failed`, and `flwr run` still returns 0). This module
starts the run with `flwr run --format json` (which prints the run id), streams its log with `flwr log`, then
reads the run's final status with `flwr ls --run-id --format json`; `run_to_the_end` returns that status and
its details, so the caller can exit non-zero on anything but `finished:completed`.

`register_nodes` registers the feature parties' SuperNode keys the same way and returns the `nodes=` run
config value that declares them (`fedsim.runtime.flower.server.parse_nodes`).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from fedsim.errors import UserError

COMPLETED = "finished:completed"


@dataclass(frozen=True)
class RunOutcome:
    run_id: int
    status: str  # Flower's status text, e.g. "finished:completed", "finished:failed"
    details: str  # Flower's status details (the error of a failed run), possibly empty

    @property
    def ok(self) -> bool:
        return self.status == COMPLETED


def flwr_command() -> str:
    """The `flwr` beside this interpreter (the same installation), else the one on PATH."""
    beside = Path(sys.executable).with_name("flwr")
    found = str(beside) if beside.exists() else shutil.which("flwr")
    if found is None:
        raise UserError("the Flower CLI `flwr` is not installed next to fedsim nor on PATH; install flwr")
    return found


def _last_json(text: str, what: str) -> dict:
    """The last JSON object in `text` that starts a line (Flower pretty-prints it over several lines, and may
    print other lines before it)."""
    found = None
    decoder = json.JSONDecoder()
    for start in (i for i in range(len(text)) if text[i] == "{" and (i == 0 or text[i - 1] == "\n")):
        try:
            value, _ = decoder.raw_decode(text, start)
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            found = value
    if found is None:
        raise UserError(f"{what} printed no JSON result: {text.strip()[-300:] or '(nothing)'}")
    return found


def _flwr(args: list[str], what: str, capture: bool = True) -> str:
    done = subprocess.run([flwr_command(), *args], capture_output=capture, text=True, check=False)
    if done.returncode != 0:
        message = (done.stderr or done.stdout or "").strip().splitlines() if capture else []
        raise UserError(f"{what} failed (exit {done.returncode}): {message[-1] if message else 'see its output above'}")
    return done.stdout or ""


def run_to_the_end(app: Path, connection: str | None, run_config: list[str]) -> RunOutcome:
    """Start the run, stream its log to this process's output, and return its final status."""
    where = [connection] if connection else []
    config = [arg for value in run_config for arg in ("-c", value)]
    started = _last_json(_flwr(["run", str(app), *where, *config, "--format", "json"], "flwr run"), "flwr run")
    if not started.get("success") or started.get("run-id") is None:
        raise UserError(f"flwr run did not start a run: {json.dumps(started)}")
    run_id = int(started["run-id"])
    _flwr(["log", str(run_id), *where, "--stream"], "flwr log", capture=False)
    listed = _last_json(_flwr(["ls", *where, "--run-id", str(run_id), "--format", "json"], "flwr ls"), "flwr ls")
    runs = listed.get("runs") or []
    if not runs:
        raise UserError(f"flwr ls does not know run {run_id}: {json.dumps(listed)[:300]}")
    return RunOutcome(run_id, str(runs[0].get("status", "")), str(runs[0].get("status-details") or ""))


def register_nodes(public_keys: list[Path], connection: str | None) -> str:
    """Register each SuperNode public key (`flwr supernode register`, the Control API) and return the run
    config value `nodes=` that declares the federation: feature party k is the node of the k-th key."""
    where = [connection] if connection else []
    pairs = []
    for partition, key in enumerate(public_keys):
        done = _last_json(_flwr(["supernode", "register", str(key), *where, "--format", "json"],
                                f"flwr supernode register {key}"), "flwr supernode register")
        if not done.get("success") or done.get("node-id") is None:
            raise UserError(f"flwr supernode register {key} registered no node: {json.dumps(done)}")
        pairs.append(f"{int(done['node-id'])}:{partition}")
    return " ".join(pairs)
