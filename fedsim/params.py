"""Plugin parameter schemas: one pydantic model per attack, defence and AUC method, one way to validate them.

Every plugin declares its parameters once, as a `PluginParams` subclass (type, default, bounds or choices,
and a one-line `Field(description=...)`), on its registry entry as `Params`, next to a one-line `summary`.
KEY=VALUE strings from the CLI (after `parse_value`), grid TOML values and Python dicts all pass through
`validate_params`, which turns the first problem into ONE line:

    attack 'lba': parameter lr must be a finite number > 0; got 'fast'
    unknown parameter 'x' for defence 'sparsify'; valid: error_feedback, fraction

The same models feed the listing commands and the generated table of docs/plugins.md (`param_rows`).
"""

from __future__ import annotations

from collections.abc import Mapping
from copy import copy
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypeVar, get_args, get_origin

import annotated_types
from pydantic import AllowInfNan, BaseModel, BeforeValidator, ConfigDict, Strict, ValidationError, create_model
from pydantic.fields import FieldInfo

from fedsim.errors import UserError
from fedsim.registry import Registry

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Rule:
    """The allowed values of a parameter in words, where its type and bounds do not say it (Annotated metadata)."""

    text: str
    type: str


def _no_bool(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("a boolean is not a number")
    return value


def _flag(value: Any) -> Any:
    if isinstance(value, str) and value.lower() in {"true", "false"}:
        return value.lower() == "true"
    return value


def _epochs(value: Any) -> Any:
    if value in ("last", "all"):
        return value
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value) or value < 1:
        raise ValueError("not an epoch selection")
    return int(value)


# Parameter types. Integers accept whole floats (3.0, as TOML may write them); no number accepts a boolean;
# an Epsilon is a privacy budget, inf meaning no noise.
Integer = Annotated[int, BeforeValidator(_no_bool)]
Number = Annotated[float, BeforeValidator(_no_bool), AllowInfNan(False)]
Flag = Annotated[bool, Strict(), BeforeValidator(_flag)]
Epsilon = Annotated[float, BeforeValidator(_no_bool), annotated_types.Gt(0),
                    Rule("a number > 0 (inf: no noise)", "float > 0 or inf")]
Epochs = Annotated[str | int, BeforeValidator(_epochs),
                   Rule("'last', 'all' or a number of last epochs >= 1", "last|all|int >= 1")]


class PluginParams(BaseModel):
    """Base of every plugin's parameter model: unknown keys are errors (see `validate_params`)."""

    model_config = ConfigDict(extra="forbid")


class NoParams(PluginParams):
    """A plugin without parameters."""


def parse_value(text: str) -> float | int | bool | str:
    """A KEY=VALUE value as the scalar it spells (true/false, an integer, a number), else the text itself."""
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
    """`KEY=VALUE` pairs (`--param`, `--defense-param`, Flower's `defense-params`) to a dict of scalars; the
    plugin's schema then checks them like any other values (`validate_params`)."""
    params: dict[str, float | int | bool | str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UserError(f"{flag} takes KEY=VALUE, got {item!r}")
        params[key.strip().replace("-", "_")] = parse_value(value.strip())
    return params


def validate_params(schema: type[M], values: Mapping[str, Any] | None, owner: str) -> M:
    """`values` checked against `schema`; any problem is one `UserError` line naming `owner` (e.g. "attack 'lba'").

    Keys may spell `_` as `-` (min-steps = min_steps)."""
    values = {str(k).replace("-", "_"): v for k, v in (values or {}).items()}
    fields = schema.model_fields
    unknown = sorted(set(values) - set(fields))
    if unknown:
        valid = ", ".join(sorted(fields)) or "none"
        raise UserError(f"unknown parameter {unknown[0]!r} for {owner}; valid: {valid}")
    try:
        return schema.model_validate(values)
    except ValidationError as exc:
        raise UserError(f"{owner}: {_one_line(schema, exc)}") from None


def _one_line(schema: type[BaseModel], exc: ValidationError) -> str:
    error = exc.errors()[0]
    key = next((str(p) for p in error["loc"] if str(p) in schema.model_fields), None)
    if key is None:  # a check across parameters (model validator): its own sentence
        return str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "missing":
        return f"parameter {key} is required ({schema.model_fields[key].description})"
    return f"parameter {key} must be {describe(schema.model_fields[key])[0]}; got {error['input']!r}"


def _bounds(metadata: list[Any]) -> list[str]:
    words = {annotated_types.Gt: ("gt", ">"), annotated_types.Ge: ("ge", ">="), annotated_types.Lt: ("lt", "<"),
             annotated_types.Le: ("le", "<=")}
    return [f"{sign} {getattr(item, attr)}" for item in metadata for kind, (attr, sign) in words.items()
            if isinstance(item, kind)]


def describe(info: FieldInfo) -> tuple[str, str]:
    """(the allowed values in words, a short type label) of one field, from its annotation and bounds."""
    for item in info.metadata:
        if isinstance(item, Rule):
            return item.text, item.type
    annotation, metadata = info.annotation, list(info.metadata)
    if get_origin(annotation) is not Literal and type(None) in get_args(annotation):  # optional: None = unset
        annotation = next(a for a in get_args(annotation) if a is not type(None))
    if get_origin(annotation) is Annotated:  # an optional parameter type: its own metadata is inside
        annotation, *extra = get_args(annotation)
        metadata += extra
    bounds = _bounds(metadata)
    if get_origin(annotation) is Literal:
        options = [str(a) for a in get_args(annotation)]
        return f"one of {', '.join(options)}", "|".join(options)
    if annotation is bool:
        return "true or false", "bool"
    if annotation is int:
        text, label = "an integer", "int"
    else:
        finite = any(getattr(m, "allow_inf_nan", True) is False for m in metadata)
        text, label = ("a finite number" if finite else "a number"), "float"
    if bounds:
        text += " " + " and ".join(bounds)
        label += " " + " and ".join(bounds)
    return text, label


def param_rows(schema: type[BaseModel]) -> list[dict[str, Any]]:
    """One row per parameter: name, type label, default (None: unset or required) and description."""
    rows = []
    for name, info in schema.model_fields.items():
        rows.append({"name": name, "type": describe(info)[1], "default": None if info.is_required() else info.default,
                     "required": info.is_required(),
                     "description": info.description or ""})
    return rows


def with_defaults(schema: type[M], name: str, doc: str, descriptions: dict[str, str] | None = None,
                  **defaults: Any) -> type[M]:
    """A subclass of `schema` whose listed fields have other defaults or descriptions (same types and bounds)."""
    fields: dict[str, Any] = {}
    for key in dict.fromkeys([*defaults, *(descriptions or {})]):  # in a stable order
        info = copy(schema.model_fields[key])
        if key in defaults:
            info.default = defaults[key]
        info.description = (descriptions or {}).get(key, info.description)
        fields[key] = (info.annotation, info)
    return create_model(name, __base__=schema, __doc__=doc, **fields)


def summaries(registry: Registry[Any]) -> dict[str, str]:
    """Name -> one-line summary of every plugin of a registry, sorted by name (for help texts and listings)."""
    return {name: registry.get(name).summary for name in registry.names()}
