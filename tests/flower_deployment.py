"""Loopback Flower deployments for the slow tests: `flower-superlink` + `flower-supernode` processes and `flwr`.

Shared by test_flower_deploy.py (plaintext) and test_flower_deploy_secure.py (TLS, SuperNode authentication).
Every process started here is stopped, by id and with its descendants, when its context exits.

FLWR_HOME is a temporary folder (the `flwr` CLI keeps its SuperLink connections there), and runtime
dependency installation is off (`--disable-runtime-dependency-installation` on the SuperLink,
FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION=1 for the managed local SuperLink), so runs use this environment.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from fedsim.config import TrainConfig
from fedsim.deploy.credentials import CA_FILE, SERVER_CERT_FILE, SERVER_KEY_FILE, node_key_file, node_public_file
from fedsim.testing.loopback import flower_env, flwr_run, free_port, running, stop, wait_for, wait_for_port
from fedsim.training import train

ROOT = Path(__file__).resolve().parents[1]
__all__ = ["flower_env", "flwr_run", "free_port", "running", "stop", "wait_for"]  # with the TLS-aware launchers below
CONNECTION = "deploy"  # the `flwr` CLI's name for the deployment's SuperLink


def local_metrics(epochs: int, batch_size: int) -> dict[str, float]:
    return train(TrainConfig(dataset="diabetes", parties=2, epochs=epochs, batch_size=batch_size)).metrics


@dataclass(frozen=True)
class Secure:
    """TLS with the credentials in `folder` (`fedsim.deploy.credentials.generate`); with `registered`, SuperNode
    authentication too, and the public keys of those SuperNode key indices registered before any SuperNode starts."""

    folder: Path
    registered: tuple[int, ...] | None = None


@dataclass
class Deployment:
    """A running SuperLink on 127.0.0.1 and the SuperNodes started so far (`processes[0]` is the SuperLink).
    SuperNodes dial port `dial`: the SuperLink's, or that of the Fleet-only proxy in front of it."""

    env: dict[str, str]
    logs: Path
    secure: Secure | None
    port: int = field(default_factory=free_port)
    processes: list[subprocess.Popen] = field(default_factory=list)
    dial: int = 0

    def __post_init__(self) -> None:
        self.dial = self.dial or self.port

    def start(self, name: str, command: list[str]) -> subprocess.Popen:
        with open(self.logs / f"{name}.log", "w") as log:
            self.processes.append(subprocess.Popen(command, env=self.env, stdout=log, stderr=subprocess.STDOUT))
        return self.processes[-1]

    def superlink(self) -> subprocess.Popen:
        command = ["flower-superlink", "--disable-runtime-dependency-installation", "--host", "127.0.0.1",
                   "--port", str(self.port)]
        if self.secure is None:
            command.append("--insecure")
        else:
            folder = self.secure.folder
            command += ["--ssl-ca-certfile", str(folder / CA_FILE), "--ssl-certfile", str(folder / SERVER_CERT_FILE),
                        "--ssl-keyfile", str(folder / SERVER_KEY_FILE)]
            if self.secure.registered is not None:
                command.append("--enable-supernode-auth")
        return self.start("superlink", command)

    def supernode(self, partition: int, parties: int, key: int | None = None, name: str | None = None,
                  extra: tuple[str, ...] = (), security: list[str] | None = None,
                  node_config: str = "") -> subprocess.Popen:
        """A SuperNode for feature party `partition`, connecting as this deployment expects (or with the
        `security` flags given); with authentication on, it signs with key index `key` (default: `partition`).
        `node_config`: more node-config pairs (per-party files: `data=... id-column=... transcript-dir=...`)."""
        command = ["flower-supernode", "--superlink", f"127.0.0.1:{self.dial}",
                   "--node-config", f"partition-id={partition} num-partitions={parties} {node_config}".strip(),
                   "--host", "127.0.0.1", "--port", str(free_port()), *extra]
        if security is not None:
            command += security
        elif self.secure is None:
            command.append("--insecure")
        else:
            command += ["--root-certificates", str(self.secure.folder / CA_FILE)]
            if self.secure.registered is not None:
                key_file = self.secure.folder / node_key_file(partition if key is None else key)
                command += ["--auth-supernode-private-key", str(key_file)]
        return self.start(name or f"supernode_{partition}", command)

    def fleet_proxy(self) -> None:
        """`fedsim deploy fleet-proxy` in front of the SuperLink, with its TLS files; SuperNodes started from now
        on dial the proxy (log: fleet_proxy.log)."""
        folder, self.dial = self.secure.folder, free_port()
        self.start("fleet_proxy", ["fedsim", "deploy", "fleet-proxy", "--listen", f"127.0.0.1:{self.dial}",
                                   "--superlink", f"127.0.0.1:{self.port}", "--cert", str(folder / SERVER_CERT_FILE),
                                   "--key", str(folder / SERVER_KEY_FILE), "--ca", str(folder / CA_FILE)])
        wait_for_port(self.dial)

    def flwr(self, *args: str, timeout: float = 120) -> str:
        """A `flwr` CLI command on this deployment's connection, retried while the SuperLink is starting."""
        deadline = time.monotonic() + timeout
        while (done := subprocess.run(["flwr", *args, CONNECTION], env=self.env, capture_output=True,
                                      text=True)).returncode != 0:
            assert time.monotonic() < deadline, f"flwr {' '.join(args)} failed: {done.stdout}{done.stderr}"
            time.sleep(1)
        return done.stdout

    def register(self, key: int) -> None:
        """Register SuperNode key `key`'s public half with the SuperLink (`flwr supernode register`)."""
        self.flwr("supernode", "register", str(self.secure.folder / node_public_file(key)))


def connection_toml(name: str, port: int, ca: Path | None) -> str:
    """A `flwr` CLI SuperLink connection: plaintext, or TLS verified with the CA certificate `ca`."""
    security = "insecure = true" if ca is None else f'root-certificates = "{ca}"'
    return f'[superlink.{name}]\naddress = "127.0.0.1:{port}"\n{security}\n'


@contextmanager
def deployment(env: dict[str, str], parties: int, logs: Path, secure: Secure | None = None,
               nodes: int | None = None, node_configs: dict[int, str] | None = None,
               proxy: bool = False) -> Iterator[Deployment]:
    """A SuperLink and SuperNodes 0..nodes-1 (default: one per feature party) on 127.0.0.1; `node_configs[k]`:
    node k's extra node-config pairs; `proxy`: the SuperNodes dial a Fleet-only proxy (TLS only)."""
    deployed = Deployment(env, logs, secure)
    ca = None if secure is None else secure.folder / CA_FILE
    (Path(env["FLWR_HOME"]) / "config.toml").write_text(
        f'[superlink]\ndefault = "{CONNECTION}"\n\n{connection_toml(CONNECTION, deployed.port, ca)}')
    try:
        deployed.superlink()
        wait_for_port(deployed.port)  # `flwr run` and `flwr supernode register` fail at once on a starting SuperLink
        for key in () if secure is None or secure.registered is None else secure.registered:
            deployed.register(key)
        if proxy:
            deployed.fleet_proxy()
        for k in range(parties if nodes is None else nodes):
            deployed.supernode(k, parties, node_config=(node_configs or {}).get(k, ""))
        yield deployed
    finally:
        stop(deployed.processes)
