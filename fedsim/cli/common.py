"""Helpers shared by the CLI commands: output, and KEY=VALUE parsing (`fedsim.params.parse_params`)."""

from __future__ import annotations

import sys
from typing import Any

from fedsim.params import parse_params

__all__ = ["emit_json", "parse_params"]


def emit_json(payload: dict[str, Any]) -> None:
    """Exactly one strict JSON object on stdout (undefined or infinite numbers are null)."""
    from fedsim.fileio import strict_json  # numpy: loaded when a command prints, not for --help

    sys.stdout.write(strict_json(payload) + "\n")
    sys.stdout.flush()


