"""Helpers shared by the CLI commands: output, and KEY=VALUE parsing (`fedsim.params.parse_params`)."""

from __future__ import annotations

import json
import sys
from typing import Any

from fedsim.params import parse_params

__all__ = ["emit_json", "parse_params"]


def emit_json(payload: dict[str, Any]) -> None:
    """Exactly one JSON object on stdout."""
    sys.stdout.write(json.dumps(payload, default=_jsonable) + "\n")
    sys.stdout.flush()


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)

