"""Helpers shared by the CLI commands: JSON output and the console, both loaded when a command prints (so a
help page imports neither numpy nor rich)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console


def emit_json(payload: dict[str, Any]) -> None:
    """Exactly one strict JSON object on stdout (undefined or infinite numbers are null)."""
    from fedsim.fileio import strict_json  # numpy: loaded when a command prints, not for --help

    sys.stdout.write(strict_json(payload) + "\n")
    sys.stdout.flush()


def new_console(**options: Any) -> Console:
    """A rich console for a command's human-readable output."""
    from rich.console import Console

    return Console(**options)
