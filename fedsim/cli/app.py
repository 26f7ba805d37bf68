"""Entry point: one typer app; user errors become one line on stderr and exit code 2."""

from __future__ import annotations

import signal
import sys
import threading
import warnings
from importlib import metadata

import click
import typer

from fedsim.cli import attack as attack_cli
from fedsim.cli import auc as auc_cli
from fedsim.cli import audit as audit_cli
from fedsim.cli import bench as bench_cli
from fedsim.cli import deploy as deploy_cli
from fedsim.cli import plugins as plugins_cli
from fedsim.cli import train as train_cli
from fedsim.cli.help import HelpCommand
from fedsim.errors import FedsimWarning, PartyError, UserError

app = typer.Typer(
    name="fedsim",
    help="Label privacy in vertical federated learning and split learning.\n\n"
         "Start with `fedsim demo`; `fedsim COMMAND --help` describes each command.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain click help: wraps cleanly at 80 columns
)
app.command("datasets", cls=HelpCommand)(train_cli.datasets_command)
app.command("train", cls=HelpCommand)(train_cli.train_command)
app.command("attack", cls=HelpCommand)(attack_cli.attack_command)
app.command("bench", cls=HelpCommand)(bench_cli.bench_command)
app.command("report", cls=HelpCommand)(bench_cli.report_command)
app.command("demo", cls=HelpCommand)(bench_cli.demo_command)
app.command("auc", cls=HelpCommand)(auc_cli.auc_command)
app.command("attacks", cls=HelpCommand)(plugins_cli.attacks_command)
app.command("defenses", cls=HelpCommand)(plugins_cli.defenses_command)
app.command("auc-methods", cls=HelpCommand)(plugins_cli.auc_methods_command)
app.add_typer(audit_cli.app, name="audit")
app.add_typer(deploy_cli.app, name="deploy")


def _print_version(value: bool) -> None:
    if value:
        print(f"fedsim {metadata.version('fedsim')}")
        raise typer.Exit()


@app.callback()
def _options(
    version: bool = typer.Option(False, "--version", is_eager=True, callback=_print_version,
                                 help="Print the installed version and exit."),
) -> None:
    """Options of `fedsim` itself."""


def _terminate(signum: int, frame: object) -> None:
    """SIGTERM unwinds like ctrl-C, so every staging folder and lock is removed on the way out; a second one
    (`timeout` signals the child and then its process group) is ignored, so it cannot cut that clean-up short."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    if threading.current_thread() is not threading.main_thread():  # signals reach the main thread only
        return _run(argv)
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        return _run(argv)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ANN001
    """fedsim's own warnings as one line, like its errors; others as Python prints them."""
    if issubclass(category, FedsimWarning):
        print(f"fedsim: warning: {message}", file=sys.stderr)
    else:
        _python_show_warning(message, category, filename, lineno, file, line)


_python_show_warning = warnings.showwarning


def _run(argv: list[str] | None) -> int:
    command = typer.main.get_command(app)
    warnings.showwarning = _show_warning
    try:
        result = command.main(args=argv if argv is not None else sys.argv[1:], prog_name="fedsim",
                              standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as exc:  # bare `fedsim`: the help, on stdout, as a usage error
        print(exc.ctx.get_help() if exc.ctx else exc.format_message())
        return _exit(2)
    except UserError as exc:
        print(f"fedsim: error: {exc}", file=sys.stderr)
        return _exit(2)
    except PartyError as exc:
        print(f"fedsim: error: {exc}", file=sys.stderr)
        return _exit(1)
    except click.UsageError as exc:
        print(f"fedsim: error: {exc.format_message()}", file=sys.stderr)
        return _exit(2)
    except click.Abort:
        print("fedsim: aborted", file=sys.stderr)
        return _exit(1)
    except click.exceptions.Exit as exc:
        return _exit(exc.exit_code)
    return _exit(result if isinstance(result, int) else 0)


def _exit(code: int) -> int:
    if __name__ == "__main__" or sys.argv and sys.argv[0].endswith("fedsim"):
        sys.exit(code)
    return code


if __name__ == "__main__":
    main()
