"""`fedsim deploy keys|check|register|fleet-proxy|run`: throwaway credentials for a Flower deployment with TLS
and SuperNode authentication, checks of any set before Flower starts, registering the feature parties' keys
as the declared federation, the Fleet-only proxy, and `flwr run` with an exit status that says whether the
run succeeded (docs/deployment.md). The work is in `fedsim.deploy`; a bad
input is a `UserError` (one line, exit code 2, nothing written).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from fedsim.cli.help import HelpCommand
from fedsim.errors import check

app = typer.Typer(name="deploy", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  rich_markup_mode=None,
                  help="Credentials for a secure Flower deployment.\n\nTLS on the SuperLink and SuperNode "
                       "authentication with registered keys (docs/deployment.md).")


@app.command("keys", cls=HelpCommand)
def keys_command(
    out: Annotated[Path, typer.Option("--out", help="New folder for the credentials.")],
    supernodes: Annotated[int, typer.Option("--supernodes", help="Key pairs to make: one per feature party.")] = 2,
    host: Annotated[list[str] | None, typer.Option(
        "--host", help="Name or IP address the SuperNodes dial, added to the certificate (repeatable); "
                       "localhost, 127.0.0.1 and ::1 are always in it.")] = None,
    days: Annotated[int, typer.Option("--days", help="Days the certificates stay valid.")] = 30,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing --out folder.")] = False,
) -> None:
    """Make throwaway credentials for a trial.

    A CA (its key is not kept), the SuperLink's TLS certificate and key, and one key pair per SuperNode.
    """
    from fedsim.deploy import credentials  # loads numpy and cryptography: only when the command runs

    for path in credentials.generate(out, supernodes, host or [], days, overwrite):
        secret = path.suffix == ".key"
        print(f"{path}  {'SECRET (mode 600): keep on its owner' if secret else 'public'}")


@app.command("run", cls=HelpCommand)
def run_command(
    app_dir: Annotated[Path, typer.Argument(help="The Flower app folder (this project's root).")],
    connection: Annotated[str | None, typer.Argument(
        help="The SuperLink connection name in the flwr configuration (as for flwr run).")] = None,
    run_config: Annotated[list[str] | None, typer.Option(
        "--run-config", "-c", help="Run-config overrides, as for flwr run -c (repeatable).")] = None,
) -> None:
    """`flwr run APP CONNECTION --stream`, then exit 1 unless the run finished completed.

    Flower's own `flwr run` exits 0 even when its ServerApp failed; this starts the run, streams its log, reads
    its final status with `flwr ls` and says it in one line.
    """
    from fedsim.deploy.run_status import run_to_the_end

    check(app_dir.is_dir() and (app_dir / "pyproject.toml").is_file(),
          f"{str(app_dir)!r} is not a Flower app folder (no pyproject.toml)")
    outcome = run_to_the_end(app_dir, connection, run_config or [])
    if not outcome.ok:
        details = f": {outcome.details}" if outcome.details else ""
        print(f"fedsim: error: run {outcome.run_id} ended {outcome.status}{details}", file=sys.stderr)
        raise typer.Exit(1)
    print(f"run {outcome.run_id} {outcome.status}")


@app.command("register", cls=HelpCommand)
def register_command(
    public_keys: Annotated[list[Path], typer.Argument(
        help="Each feature party's SuperNode public key (OpenSSH), in partition order 0, 1, ...")],
    connection: Annotated[str | None, typer.Option(
        "--connection", help="The SuperLink connection name in the flwr configuration (as for flwr run).")] = None,
) -> None:
    """Register the feature parties' SuperNode keys and print the run config that declares them.

    Runs `flwr supernode register` per key (the SuperLink then admits a node under that id only with that
    key, with --enable-supernode-auth) and prints `nodes="ID:0 ID:1 ..."`: pass it to `fedsim deploy run`
    / `flwr run` with -c, and no other node gets any message of the run.
    """
    from fedsim.deploy import credentials
    from fedsim.deploy.run_status import register_nodes

    for key in public_keys:
        credentials.check_public_key(key)
    print(f'nodes="{register_nodes(public_keys, connection)}"')


@app.command("check", cls=HelpCommand)
def check_command(
    ca: Annotated[Path, typer.Option("--ca", help="CA certificate (PEM) that verifies the SuperLink.")],
    cert: Annotated[Path | None, typer.Option("--cert", help="SuperLink TLS certificate (PEM).")] = None,
    key: Annotated[Path | None, typer.Option("--key", help="SuperLink TLS private key (PEM).")] = None,
    node_key: Annotated[Path | None, typer.Option("--node-key", help="A SuperNode's private key (OpenSSH).")] = None,
    public_key: Annotated[list[Path] | None, typer.Option(
        "--public-key", help="A SuperNode public key to register (OpenSSH; repeatable).")] = None,
) -> None:
    """Check credential files before Flower starts.

    Present, parseable, the certificate matching its key and verifying against the CA, none expired.
    """
    from fedsim.deploy import credentials

    check((cert is None) == (key is None), "--cert and --key go together (the SuperLink's certificate and its key)")
    if cert is not None and key is not None:
        credentials.check_server_credentials(ca, cert, key)
    else:
        credentials.check_root_certificate(ca)
    if node_key is not None:
        credentials.check_node_key(node_key)
    for path in public_key or []:
        credentials.check_public_key(path)
    print("credentials ok")


@app.command("fleet-proxy", cls=HelpCommand)
def fleet_proxy_command(
    listen: Annotated[str, typer.Option("--listen", help="Public HOST:PORT the SuperNodes dial (e.g. 0.0.0.0:9093).")],
    cert: Annotated[Path, typer.Option("--cert", help="SuperLink TLS certificate (PEM), served by the proxy.")],
    key: Annotated[Path, typer.Option("--key", help="SuperLink TLS private key (PEM).")],
    ca: Annotated[Path, typer.Option("--ca", help="CA certificate (PEM) that verifies the SuperLink.")],
    superlink: Annotated[str, typer.Option(
        "--superlink", help="HOST:PORT of the SuperLink, bound to 127.0.0.1 (flower-superlink --host 127.0.0.1).")]
        = "127.0.0.1:9092",
) -> None:
    """Expose only the SuperLink's Fleet API (what SuperNodes use) on the public address.

    Forwards /v1/fleet/ requests to the SuperLink over TLS and answers everything else (the Control API that
    `flwr run` and `flwr supernode register` use, the Runtime API) 404. Runs until interrupted.
    """
    import logging

    from fedsim.deploy import credentials, fleet_proxy

    credentials.check_server_credentials(ca, cert, key)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # not one line per forwarded request
    fleet_proxy.serve(listen, superlink, str(cert), str(key), str(ca))
