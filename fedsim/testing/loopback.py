"""Launch a real Flower deployment on loopback: `flower-superlink`, one `flower-supernode` per feature party,
and `flwr run` of this project against it (used by the deployment tests and `bench_deploy_latency`).

FLWR_HOME is a temporary folder (the `flwr` CLI keeps its SuperLink connections there), and runtime
dependency installation is off (`--disable-runtime-dependency-installation` on the SuperLink,
FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION=1 for the managed local SuperLink), so runs use this environment.
Every process started here is stopped, by id, in `finally` blocks.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path

from fedsim.runtime.flower.simulation import descendants

ROOT = Path(__file__).resolve().parents[2]  # the Flower app project (its pyproject.toml has [tool.flwr.app])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def stop(processes: list[subprocess.Popen], pids: list[int] | None = None) -> None:
    """SIGTERM the started processes (and extra `pids`) with their descendants, then SIGKILL what is left."""
    roots = [p.pid for p in processes] + list(pids or [])
    targets = [pid for root in roots for pid in [root, *descendants(root)]]
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in targets:
            with suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            for p in processes:
                p.poll()  # reap, so a finished child does not linger as a zombie
            if not any(running(pid) for pid in targets):
                return
            time.sleep(0.2)


@contextmanager
def flower_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    """The environment of a loopback deployment. Its PATH starts with this interpreter's scripts folder, so
    `flwr`, `flower-superlink`, `flower-supernode` (and the processes they start) are the ones installed beside
    `sys.executable`, even when its virtualenv is not activated."""
    home = tmp_path / "flwr-home"
    home.mkdir()
    scripts = str(Path(sys.executable).parent)
    yield dict(os.environ, PATH=os.pathsep.join([scripts, os.environ.get("PATH", "")]), FLWR_HOME=str(home),
               FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION="1",
               FLWR_DISABLE_UPDATE_CHECK="1", FLWR_SUPEREXEC_TASK_POLL_INTERVAL="0.1",
               FLWR_LOCAL_SUPERLINK_HTTP_API_PORT=str(free_port()),
               FLWR_LOCAL_CONTROL_API_PORT=str(free_port()))


def flwr_run(env: dict[str, str], connection: str, run_config: str, timeout: float = 600, app: Path = ROOT,
             output: Path | None = None) -> None:
    """`flwr run APP` to the end; its output (the streamed ServerApp log) goes to `output` if given."""
    with open(output or os.devnull, "w") as out:
        subprocess.run(["flwr", "run", str(app), connection, "--stream", "-c", run_config], env=env, check=True,
                       timeout=timeout, stdout=out, stderr=subprocess.STDOUT)


def wait_for(path: Path, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"no {path.name} after {timeout} s"
        time.sleep(0.5)
    return json.loads(path.read_text())


def wait_for_port(port: int, timeout: float = 120) -> None:
    """Until something accepts connections on 127.0.0.1:`port` (a starting SuperLink), or TimeoutError."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout:g} s") from None
            time.sleep(0.2)


def wait_until_ready(logs: Path, parties: int, warm: bool = False, timeout: float = 300) -> None:
    """Until every SuperNode has registered with the SuperLink (so the SuperLink serves) and every warm SuperExec
    runs, read from their logs: on a loaded machine a SuperLink takes many seconds to start, and `flwr run`
    fails at once if it is not up yet."""
    ready = {**{f"supernode_{k}": "SuperNode ID:" for k in range(parties)},
             **{f"superexec_{k}": "Starting Flower SuperExec" for k in range(parties if warm else 0)}}
    deadline = time.monotonic() + timeout
    while not all((log := logs / f"{name}.log").exists() and text in log.read_text(errors="replace")
                  for name, text in ready.items()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"deployment not ready after {timeout:g} s; see the logs in {logs}")
        time.sleep(0.5)


@contextmanager
def deployment(env: dict[str, str], parties: int, logs: Path, warm: bool = False,
               supernode: Sequence[str] = ("flower-supernode",)) -> Iterator[list[subprocess.Popen]]:
    """A SuperLink and one SuperNode per feature party on 127.0.0.1, yielded once all are up:
    [superlink, *supernodes].

    `warm`: each SuperNode runs without its own SuperExec (`--isolation process`) and fedsim's
    `warm_superexec` runs its ClientApp tasks instead (yielded after the SuperNodes, logs in superexec_K.log).
    `supernode`: the command that starts a SuperNode (its arguments follow)."""
    port = free_port()
    (Path(env["FLWR_HOME"]) / "config.toml").write_text(
        f'[superlink]\ndefault = "deploy"\n\n[superlink.deploy]\naddress = "127.0.0.1:{port}"\ninsecure = true\n')
    processes: list[subprocess.Popen] = []

    def start(name: str, command: list[str]) -> None:
        with open(logs / f"{name}.log", "w") as log:
            processes.append(subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT))

    try:
        start("superlink", ["flower-superlink", "--insecure", "--disable-runtime-dependency-installation",
                            "--host", "127.0.0.1", "--port", str(port)])
        runtime_ports = [free_port() for _ in range(parties)]
        isolation = ["--isolation", "process"] if warm else []
        for k, runtime_port in enumerate(runtime_ports):
            start(f"supernode_{k}", [*supernode, "--insecure", "--superlink", f"127.0.0.1:{port}",
                                     "--node-config", f"partition-id={k} num-partitions={parties}",
                                     *isolation, "--host", "127.0.0.1", "--port", str(runtime_port)])
        for k, runtime_port in enumerate(runtime_ports if warm else []):
            start(f"superexec_{k}", [sys.executable, "-m", "fedsim.runtime.flower.warm_superexec", "--insecure",
                                     "--runtime-api-address", f"127.0.0.1:{runtime_port}"])
        wait_until_ready(logs, parties, warm)
        yield processes
    finally:
        stop(processes)
