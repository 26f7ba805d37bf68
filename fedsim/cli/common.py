"""Helpers shared by the CLI commands: output, KEY=VALUE parsing."""

from __future__ import annotations

import json
import sys
from typing import Any

from fedsim.errors import UserError
from fedsim.fileio import to_jsonable


def emit_json(payload: dict[str, Any]) -> None:
    """Exactly one JSON object on stdout."""
    sys.stdout.write(json.dumps(to_jsonable(payload)) + "\n")
    sys.stdout.flush()


def parse_value(text: str) -> float | int | bool | str:
    lowered = text.lower()
    if lowered in {"true", "false"}:
        return lowered == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text


def parse_params(items: list[str] | None, flag: str) -> dict[str, float | int | bool | str]:
    """`KEY=VALUE` pairs to a dict (numbers and booleans parsed)."""
    params: dict[str, float | int | bool | str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UserError(f"{flag} takes KEY=VALUE, got {item!r}")
        params[key.strip().replace("-", "_")] = parse_value(value.strip())
    return params
