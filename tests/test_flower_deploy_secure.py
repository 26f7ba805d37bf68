"""A loopback deployment with TLS and SuperNode authentication (docs/deployment.md), with throwaway credentials
from `fedsim.deploy.credentials.generate`. Slow: real `flower-superlink`/`flower-supernode` processes; every
process is stopped by id when its test ends. Select them with `-m slow -k "tls or auth"`.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from flower_deployment import (
    CONNECTION,
    ROOT,
    Deployment,
    Secure,
    connection_toml,
    deployment,
    flower_env,
    flwr_run,
    local_metrics,
    stop,
)

from fedsim.deploy.credentials import generate

pytestmark = pytest.mark.slow
# Flower's exit code for a SuperNode that could not connect (the process itself may then exit with 1: the
# SuperExec it had started is interrupted on the way out)
CONNECT_FAILED = "Exit Code: 305"
# per-message timeout 300 s: on a loaded 2-core machine one deployed step took up to 140 s (a ClientApp process
# start per message on each node); it only bounds how long a failing run takes to fail
RUN = "epochs=1 batch-size=128 timeout=300.0 result='{result}'"
RUN_LIMIT_S = 1200


@pytest.fixture
def credentials(tmp_path: Path) -> Path:
    """CA, SuperLink certificate and key, and SuperNode key pairs 0..2 (2 is never registered)."""
    return generate(tmp_path / "credentials", supernodes=3)[0].parent


def key_material(credentials: Path) -> dict[str, bytes]:
    """Fragments that identify each private key in `credentials`: its file's encoded lines, and the private
    number as raw bytes, hex and decimal (the forms a careless log or serialiser would write)."""
    fragments = {}
    for path in sorted(credentials.glob("*.key")):
        data = path.read_bytes()
        try:
            key = serialization.load_pem_private_key(data, None)
        except ValueError:
            key = serialization.load_ssh_private_key(data, None)
        number = key.private_numbers().private_value
        raw = number.to_bytes((number.bit_length() + 7) // 8, "big")
        fragments |= {f"{path.name} raw": raw, f"{path.name} hex": raw.hex().encode(),
                      f"{path.name} decimal": str(number).encode()}
        for i, line in enumerate(data.splitlines()):
            if not line.startswith(b"-----") and len(line) >= 16:
                fragments[f"{path.name} line {i}"] = line
    return fragments


def leaks(root: Path, fragments: dict[str, bytes], skip: Path) -> list[str]:
    """Every (file, fragment) where key material occurs in a file under `root` outside `skip`."""
    files = [p for p in sorted(root.rglob("*")) if p.is_file() and skip not in p.parents]
    assert files
    return [f"{p.relative_to(root)}: {name}" for p in files for name, fragment in fragments.items()
            if fragment in p.read_bytes()]


def test_tls_auth_deployment_trains_like_local_and_writes_no_key_material(tmp_path, credentials):
    with flower_env(tmp_path) as env, deployment(env, 2, tmp_path, Secure(credentials, registered=(0, 1))):
        flwr_run(env, CONNECTION, RUN.format(result=tmp_path / "result.json") + f" transcript='{tmp_path / 'run'}'",
                 timeout=RUN_LIMIT_S, output=tmp_path / "flwr_run.log")
    result = json.loads((tmp_path / "result.json").read_text())
    assert "error" not in result, result
    for key, value in local_metrics(1, 128).items():
        assert result["test"][key] == pytest.approx(value, rel=1e-5)
    # result, transcript folder, the streamed ServerApp log and every process's log hold no key material
    fragments = key_material(credentials)
    assert len(fragments) > 3 * 3
    assert (tmp_path / "run" / "manifest.json").exists() and "fedsim result" in (tmp_path / "flwr_run.log").read_text()
    assert leaks(tmp_path, fragments, skip=credentials) == []
    # the scan does find key material where it is, in each form
    planted = tmp_path / "planted"
    planted.mkdir()
    for name, fragment in fragments.items():
        (planted / name.replace(" ", "_")).write_bytes(b"x" + fragment + b"y")
    assert len(leaks(planted, fragments, skip=credentials)) >= len(fragments)


def test_auth_unregistered_supernode_is_refused_and_training_waits_for_registered_party(tmp_path, credentials):
    result = tmp_path / "result.json"
    with (flower_env(tmp_path) as env,
          deployment(env, 2, tmp_path, Secure(credentials, registered=(0, 1)), nodes=1) as deployed):
        with open(tmp_path / "flwr_run.log", "w") as log:  # the ServerApp waits up to 300 s for both parties
            run = subprocess.Popen(["flwr", "run", str(ROOT), CONNECTION, "--stream", "-c", RUN.format(result=result)],
                                   env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            # feature party 1's seat, claimed with key 2, which was never registered
            impostor = deployed.supernode(1, 2, key=2, name="impostor")
            assert refused(impostor, tmp_path / "impostor.log")
            assert "Failed to activate SuperNode" in (tmp_path / "impostor.log").read_text()
            assert not result.exists() and run.poll() is None  # the run has not started training without it
            deployed.supernode(1, 2)  # the registered party 1
            assert run.wait(timeout=RUN_LIMIT_S) == 0
        finally:
            stop([run])
    payload = json.loads(result.read_text())
    assert "error" not in payload, payload
    for key, value in local_metrics(1, 128).items():
        assert payload["test"][key] == pytest.approx(value, rel=1e-5)


def test_declared_federation_ignores_a_registered_intruder_claiming_a_partition(tmp_path, credentials):
    """`fedsim deploy register` declares keys 0 and 1 as parties 0 and 1 (nodes=); a third node, with its own
    registered key 2, claims partition 1 too. Declared, the run never asks it and trains like local;
    without nodes= the same federation stops before any setup on the duplicate claim (so the test fails if
    the declaration is ignored)."""
    from fedsim.deploy.credentials import node_public_file

    keys = [str(credentials / node_public_file(k)) for k in (0, 1)]
    with (flower_env(tmp_path) as env,
          deployment(env, 2, tmp_path, Secure(credentials, registered=()), nodes=0) as deployed):
        deployed.flwr("ls")  # the SuperLink answers
        registered = subprocess.run(["fedsim", "deploy", "register", *keys, "--connection", CONNECTION], env=env,
                                    capture_output=True, text=True, timeout=300)
        assert registered.returncode == 0, registered.stderr
        declared = registered.stdout.strip().splitlines()[-1]
        assert re.fullmatch(r'nodes="\d+:0 \d+:1"', declared), declared
        deployed.register(2)
        for partition, key in ((0, 0), (1, 1), (1, 2)):
            deployed.supernode(partition, 2, key=key, name=f"supernode_key{key}")
        flwr_run(env, CONNECTION, RUN.format(result=tmp_path / "declared.json") + f" {declared}",
                 timeout=RUN_LIMIT_S, output=tmp_path / "declared_run.log")
        undeclared = tmp_path / "undeclared.json"
        flwr_run(env, CONNECTION, RUN.format(result=undeclared), timeout=RUN_LIMIT_S,
                 output=tmp_path / "undeclared_run.log")  # flwr run exits 0 on a failed run
    result = json.loads((tmp_path / "declared.json").read_text())
    assert "error" not in result, result
    node_ids = [int(pair.split(":")[0]) for pair in declared[len('nodes="'):-1].split()]
    assert result["flower"]["nodes"] == {"0": node_ids[0], "1": node_ids[1]}
    for key, value in local_metrics(1, 128).items():
        assert result["test"][key] == pytest.approx(value, rel=1e-5)
    assert "both claim partition-id 1" in json.loads(undeclared.read_text())["error"]


def test_tls_superlink_refuses_plaintext_and_unknown_ca_clients(tmp_path, credentials):
    other_ca = generate(tmp_path / "other", supernodes=1)[0]
    with flower_env(tmp_path) as env, deployment(env, 2, tmp_path, Secure(credentials), nodes=0) as deployed:
        deployed.flwr("ls")  # the SuperLink is up and answers TLS clients that trust its CA
        retries = ("--max-retries", "2", "--max-wait-time", "30")
        plaintext = deployed.supernode(0, 2, name="plaintext", extra=retries, security=["--insecure"])
        untrusting = deployed.supernode(1, 2, name="untrusting", extra=retries,
                                        security=["--root-certificates", str(other_ca)])
        assert refused(plaintext, tmp_path / "plaintext.log")
        assert refused(untrusting, tmp_path / "untrusting.log")
        assert "CERTIFICATE_VERIFY_FAILED" in (tmp_path / "untrusting.log").read_text()
        # without authentication any SuperNode that can talk to the SuperLink becomes a node: none did
        assert nodes(deployed) == []
        deployed.supernode(0, 2)  # the same SuperNode over TLS, trusting the right CA, does connect
        deadline = time.monotonic() + 180
        while [node["status"] for node in nodes(deployed)] != ["online"]:
            assert time.monotonic() < deadline, f"the TLS SuperNode did not come online: {nodes(deployed)}"
            time.sleep(1)
        with open(Path(env["FLWR_HOME"]) / "config.toml", "a") as config:
            config.write("\n" + connection_toml("plain", deployed.port, None))
        plain_cli = subprocess.run(["flwr", "ls", "plain"], env=env, capture_output=True, text=True, timeout=120)
        assert plain_cli.returncode != 0, plain_cli.stdout


def refused(supernode: subprocess.Popen, log: Path) -> bool:
    """The SuperNode gave up: it exited, not with 0, after Flower's could-not-connect error."""
    return supernode.wait(timeout=180) != 0 and CONNECT_FAILED in log.read_text()


def nodes(deployed: Deployment) -> list[dict]:
    return json.loads(deployed.flwr("supernode", "list", "--format", "json"))["nodes"]
