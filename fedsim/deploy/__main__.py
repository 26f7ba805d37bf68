"""`python -m fedsim.deploy keys|check`: throwaway credentials for a secure deployment, and checks of any set.

User errors print one line and exit with code 2 (`fedsim.errors.UserError`), like the `fedsim` CLI.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import click
import typer

from fedsim.deploy import credentials
from fedsim.errors import UserError, check

app = typer.Typer(name="fedsim deploy", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="Credentials for a Flower deployment with TLS and SuperNode authentication.")


@app.command("keys")
def keys_command(
    out: Annotated[Path, typer.Option("--out", help="New folder for the credentials.")],
    supernodes: Annotated[int, typer.Option("--supernodes", help="Key pairs to make: one per feature party.")] = 2,
    host: Annotated[list[str] | None, typer.Option(
        "--host", help="Name or IP the SuperNodes dial, added to the certificate (repeatable); "
                       "localhost, 127.0.0.1 and ::1 are always in it.")] = None,
    days: Annotated[int, typer.Option("--days", help="Validity of the certificates.")] = 30,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing --out folder.")] = False,
) -> None:
    """Make a throwaway CA, the SuperLink's TLS certificate and key, and one key pair per SuperNode (for trials)."""
    written = credentials.generate(out, supernodes, host or [], days, overwrite)
    for path in written:
        secret = path.name.endswith(".key")
        print(f"{path}  {'SECRET (mode 600): keep on its owner' if secret else 'public'}")


@app.command("check")
def check_command(
    ca: Annotated[Path, typer.Option("--ca", help="CA certificate (PEM) that verifies the SuperLink.")],
    cert: Annotated[Path | None, typer.Option("--cert", help="SuperLink TLS certificate (PEM).")] = None,
    key: Annotated[Path | None, typer.Option("--key", help="SuperLink TLS private key (PEM).")] = None,
    node_key: Annotated[Path | None, typer.Option("--node-key", help="A SuperNode's private key (OpenSSH).")] = None,
    public_key: Annotated[list[Path] | None, typer.Option(
        "--public-key", help="A SuperNode public key to register (OpenSSH; repeatable).")] = None,
) -> None:
    """Check credential files before starting Flower: present, parseable, matching, not expired."""
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


def main(argv: list[str] | None = None) -> int:
    try:
        typer.main.get_command(app).main(args=argv if argv is not None else sys.argv[1:],
                                         prog_name="python -m fedsim.deploy", standalone_mode=False)
    except UserError as exc:
        print(f"fedsim: error: {exc}", file=sys.stderr)
        return 2
    except click.UsageError as exc:
        print(f"fedsim: error: {exc.format_message()}", file=sys.stderr)
        return 2
    except click.exceptions.Exit as exc:
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
