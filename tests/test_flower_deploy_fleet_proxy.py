"""The documented secure layout (docs/deployment.md): the SuperLink on 127.0.0.1, `fedsim deploy fleet-proxy` on
the public address, SuperNodes dialling the proxy with TLS and SuperNode authentication. Slow: real Flower
processes on loopback, every one stopped by id when its test ends (`pytest -m slow -k "proxy or outsider"`).

Each defence is shown to matter: the outsider who is refused at the proxy gets through at the SuperLink's own
port, and the key-less SuperNode that is refused under `--enable-supernode-auth` is admitted without it.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import flower_deployment as fd
import pytest
from test_flower_deploy_secure import RUN, RUN_LIMIT_S, nodes, refused

from fedsim.deploy.credentials import CA_FILE, generate, node_public_file

pytestmark = pytest.mark.slow
RETRIES = ("--max-retries", "2", "--max-wait-time", "30")


@pytest.fixture
def creds(tmp_path: Path) -> Path:
    """CA, SuperLink certificate and key, and SuperNode key pairs 0..2 (2 is never registered)."""
    return generate(tmp_path / "credentials", supernodes=3)[0].parent


def test_deploy_through_fleet_proxy_trains_like_local_with_tls_and_auth(tmp_path, creds):
    result = tmp_path / "result.json"
    with (fd.flower_env(tmp_path) as env,
          fd.deployment(env, 2, tmp_path, fd.Secure(creds, registered=(0, 1)), proxy=True) as deployed):
        assert deployed.dial != deployed.port
        fd.flwr_run(env, fd.CONNECTION, RUN.format(result=result), timeout=RUN_LIMIT_S,
                    output=tmp_path / "flwr_run.log")
    payload = json.loads(result.read_text())
    assert "error" not in payload, payload
    for key, value in fd.local_metrics(1, 128).items():
        assert payload["test"][key] == pytest.approx(value, rel=1e-5)
    assert "refused" not in (tmp_path / "fleet_proxy.log").read_text()  # every SuperNode call was a Fleet call


def outsider(env: dict[str, str], home: Path, *args: str) -> subprocess.CompletedProcess:
    """A `flwr` command run by someone holding only ca.pem (their own FLWR_HOME; connections `proxy`, `direct`)."""
    return subprocess.run(["flwr", *args], env=dict(env, FLWR_HOME=str(home)), capture_output=True, text=True,
                          timeout=180)


def test_outsider_with_only_the_ca_is_refused_at_the_fleet_proxy_but_not_at_the_superlink_port(tmp_path,
                                                                                              creds):
    """The outsider's key stands in as supernode-2.pub (never registered by the label party)."""
    home = tmp_path / "outsider-home"
    home.mkdir()
    ca, key = creds / CA_FILE, str(creds / node_public_file(2))
    app = ["run", str(fd.ROOT)]
    with (fd.flower_env(tmp_path) as env,
          fd.deployment(env, 2, tmp_path, fd.Secure(creds, registered=(0, 1)), nodes=0, proxy=True) as deployed):
        deployed.flwr("ls")  # the SuperLink is up
        (home / "config.toml").write_text('[superlink]\ndefault = "proxy"\n\n'
                                          + fd.connection_toml("proxy", deployed.dial, ca) + "\n"
                                          + fd.connection_toml("direct", deployed.port, ca))
        for args in (["ls"], ["supernode", "register", key], [*app, "-c", "timeout=30.0"], ["log", "1", "--show"],
                     ["supernode", "list"]):
            done = outsider(env, home, *args, "proxy")
            assert done.returncode != 0, (args, done.stdout, done.stderr)
        refusals = re.findall(r"refused POST '(/v1/control/[a-z-]+)'", (tmp_path / "fleet_proxy.log").read_text())
        assert len(set(refusals)) >= 4, refusals
        assert len(nodes(deployed)) == 2 and json.loads(deployed.flwr("ls", "--format", "json"))["runs"] == []
        # the unsafe layout: the same outsider at the SuperLink's own port registers a key and starts a run
        assert outsider(env, home, "supernode", "register", key, "direct").returncode == 0
        assert len(nodes(deployed)) == 3
        started = outsider(env, home, *app, "direct", "-c", "timeout=30.0")
        assert started.returncode == 0, started.stdout + started.stderr
        assert len(json.loads(deployed.flwr("ls", "--format", "json"))["runs"]) == 1
        assert outsider(env, home, "ls", "direct").returncode == 0


def test_deploy_auth_refuses_keyless_and_unregistered_supernodes_and_admits_keyless_without_auth(tmp_path,
                                                                                                creds):
    """Behind the proxy. A key-less SuperNode registers itself over the Fleet API: `--enable-supernode-auth` is
    what refuses that. A SuperNode with an unregistered key is refused with or without the flag (it never
    self-registers): that check is the registration list, not the flag."""
    tls_only = ["--root-certificates", str(creds / CA_FILE)]
    with fd.flower_env(tmp_path) as env:
        (tmp_path / "auth").mkdir()
        with fd.deployment(env, 2, tmp_path / "auth", fd.Secure(creds, registered=(0, 1)), nodes=0,
                        proxy=True) as deployed:
            keyless = deployed.supernode(0, 2, name="keyless", extra=RETRIES, security=tls_only)
            impostor = deployed.supernode(1, 2, key=2, name="impostor", extra=RETRIES)
            assert refused(keyless, tmp_path / "auth" / "keyless.log")
            assert "SuperNode authentication is enabled. All SuperNodes must be registered" in \
                (tmp_path / "auth" / "keyless.log").read_text()
            assert refused(impostor, tmp_path / "auth" / "impostor.log")
            assert "Failed to activate SuperNode" in (tmp_path / "auth" / "impostor.log").read_text()
            assert [node["status"] for node in nodes(deployed)] == ["registered", "registered"]
        (tmp_path / "open").mkdir()
        with fd.deployment(env, 2, tmp_path / "open", fd.Secure(creds), nodes=0, proxy=True) as deployed:
            deployed.supernode(0, 2, name="keyless", security=tls_only)
            deadline = time.monotonic() + 180
            while [node["status"] for node in nodes(deployed)] != ["online"]:
                assert time.monotonic() < deadline, f"the key-less SuperNode did not come online: {nodes(deployed)}"
                time.sleep(1)
