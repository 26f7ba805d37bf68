"""Helpers shared by the CLI commands: output, and KEY=VALUE parsing (`fedsim.params.parse_params`)."""

from __future__ import annotations

import json
import sys
from typing import Any

from fedsim.params import parse_params

__all__ = ["emit_json", "parse_params"]


def emit_json(payload: dict[str, Any]) -> None:
    """Exactly one JSON object on stdout."""
    from fedsim.fileio import to_jsonable  # numpy: loaded when a command prints, not for --help

    sys.stdout.write(json.dumps(to_jsonable(payload)) + "\n")
    sys.stdout.flush()


