"""`--runtime flower`: the ServerApp and K ClientApps in Flower's simulation engine on the Ray backend.

The settings reach the apps explicitly: the ServerApp is built here around the config (the simulation's
run config is empty), and it sends each ClientApp its party's setup (public facts, its own model's
settings, its data block; never the whole config) in the setup message.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from flwr.app import Context
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp

from fedsim.config import TrainConfig
from fedsim.data import VerticalDataset
from fedsim.errors import check
from fedsim.run_result import write_run
from fedsim.runtime.flower.client import feature_app
from fedsim.runtime.flower.server import DEFAULT_TIMEOUT_S, Audit, train_on_grid

TIMEOUT_ENV = "FEDSIM_FLOWER_TIMEOUT"
STOP_GRACE_S = 10.0


def backend_config(nodes: int) -> dict:
    """One CPU per ClientApp actor and no more actors than nodes or cores (2 on this project's machines)."""
    cpus = max(1, min(os.cpu_count() or 1, nodes))
    return {"client_resources": {"num_cpus": 1, "num_gpus": 0.0},
            "init_args": {"num_cpus": cpus, "num_gpus": 0, "logging_level": "ERROR", "log_to_driver": False}}


@contextmanager
def quiet_flower(level: int = logging.CRITICAL) -> Iterator[None]:
    """Flower logs every message and a deprecation notice at INFO/WARNING; our errors say what went wrong."""
    logger = logging.getLogger("flwr")
    previous = logger.level
    logger.setLevel(level)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(previous)


def simulate(server_app: ServerApp, client_app: ClientApp, nodes: int,
             finished: threading.Event | None = None) -> None:
    """Run the apps in the simulation engine (Ray backend); returns when the ServerApp's main returns.

    Flower's engine waits for every in-flight ClientApp call before it stops, so a ClientApp stuck in a
    call would keep it alive after the ServerApp gave up on it: `finished` (set when the ServerApp's main
    ends) arms a watchdog that, if the engine has not stopped `STOP_GRACE_S` later, kills the ClientApp
    actor processes this process's Ray cluster started (the engine then sees the calls fail and stops).
    """
    from flwr.simulation import run_simulation

    returned = threading.Event()

    def watchdog(finished: threading.Event) -> None:
        while not returned.is_set():
            if finished.wait(0.5):
                if not returned.wait(STOP_GRACE_S):
                    for pid in descendants(os.getpid()):
                        if _cmdline(pid).startswith("ray::ClientAppActor"):
                            with suppress(ProcessLookupError):
                                os.kill(pid, signal.SIGKILL)
                return

    if finished is not None:  # nothing to watch otherwise (a loop without `finished` to wait on would spin a core)
        threading.Thread(target=watchdog, args=(finished,), daemon=True).start()
    try:
        with quiet_flower():
            run_simulation(server_app=server_app, client_app=client_app, num_supernodes=nodes,
                           backend_name="ray", backend_config=backend_config(nodes))
    finally:
        returned.set()


def descendants(pid: int) -> list[int]:
    """Every process started, directly or not, by `pid` (from /proc; empty where there is none)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def timeout_setting(timeout: float | None) -> float:
    if timeout is None:
        raw = os.environ.get(TIMEOUT_ENV, str(DEFAULT_TIMEOUT_S))
        try:
            timeout = float(raw)
        except ValueError:
            timeout = -1.0
    check(timeout > 0, f"{TIMEOUT_ENV} must be a number of seconds > 0, got {timeout}")
    return timeout


def train_flower(
    config: TrainConfig,
    dataset: VerticalDataset,
    transcript_dir: Path | None = None,
    overwrite: bool = False,
    show_progress: bool = False,
    *,
    timeout: float | None = None,
    client_app: ClientApp | None = None,
    audit: Audit | None = None,
):
    """Train with the label party as a ServerApp and one ClientApp per feature party, in simulation.

    `timeout` (default $FEDSIM_FLOWER_TIMEOUT or 60 s) bounds every wait for a party's reply; `audit` sees
    every message the ServerApp sends; `client_app` replaces the feature-party app (fault injection).
    """
    timeout = timeout_setting(timeout)
    outcome: dict = {}
    finished = threading.Event()
    server = ServerApp()

    @server.main()
    def main(grid: Grid, context: Context) -> None:
        try:
            outcome["result"] = train_on_grid(grid, config, dataset, timeout, show_progress, audit, "simulation")
        except BaseException as exc:  # noqa: BLE001 - re-raised below, outside Flower's thread
            outcome["error"] = exc
        finally:
            finished.set()

    try:
        simulate(server, client_app or feature_app(), config.parties, finished)
    except Exception:
        if "error" not in outcome:  # the engine's own failure; a party's fault is reported below instead
            raise
    if "error" in outcome:
        raise outcome["error"]
    check("result" in outcome, "the Flower simulation ended before the ServerApp finished")
    result = outcome["result"]
    if transcript_dir is not None:
        write_run(result, transcript_dir, overwrite)
    return result
