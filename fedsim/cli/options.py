"""Typer options generated from the config models (fedsim/config.py): each setting's flag, type, default and
help are declared once, on its model field; a command adds only its own options (--json, --quiet, ...).

`config_command(TrainConfig)` gives the decorated command one option per setting of `TrainConfig` and calls
it with the validated config instead; `option_table` renders the same settings as docs/CLI.md's tables.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from types import UnionType
from typing import Any, Literal, Union, get_args, get_origin

import click
import typer
from click.core import ParameterSource
from pydantic import BaseModel

from fedsim.config import Setting, config_from_options, settings


def cli_settings(schema: type[BaseModel], exclude: Collection[str] = ()) -> list[Setting]:
    """The settings of `schema` that are CLI options, less `exclude` (parameter names)."""
    return [s for s in settings(schema) if s.flag is not None and s.name not in exclude]


def _cli_annotation(s: Setting) -> Any:
    """The type typer parses: the field's, without None; a choice (Literal) as str (the model checks it);
    KEY=VALUE parameters as a repeatable str."""
    if s.is_params:
        return list[str]
    if s.extra.get("cli_type") == "path":
        return Path
    annotation = s.info.annotation
    if get_origin(annotation) in (Union, UnionType):  # X | None: typer takes X, its default None
        annotation = next(a for a in get_args(annotation) if a is not type(None))
    return str if get_origin(annotation) is Literal else annotation


def typer_parameter(s: Setting) -> inspect.Parameter:
    """The keyword parameter whose default is the setting's `typer.Option`."""
    default = ... if s.info.is_required() else None if s.is_params else s.default
    option = typer.Option(default, s.flag or f"--{s.name}", help=s.info.description, **s.extra.get("cli", {}))
    return inspect.Parameter(s.name, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=_cli_annotation(s))


def config_command(*schemas: type[BaseModel], exclude: Collection[str] = (),
                   insert: Mapping[str, Sequence[str]] | None = None) -> Callable[[Callable], Callable]:
    """The decorated command takes one option per setting of each schema (in declaration order, less
    `exclude`) and its own options; it is called with one validated config per schema, then its own options.

    `insert` places own options before a setting (name -> own option names), to keep a help page's order;
    the other own options come last."""
    insert = insert or {}

    def wrap(func: Callable[..., Any]) -> Callable[..., Any]:
        own = {p.name: p.replace(kind=inspect.Parameter.KEYWORD_ONLY)
               for p in list(inspect.signature(func, eval_str=True).parameters.values())[len(schemas):]}
        groups = [cli_settings(schema, exclude) for schema in schemas]
        params = []
        for group in groups:
            for s in group:
                params += [own.pop(name) for name in insert.get(s.name, ())]
                params.append(typer_parameter(s))
        params += own.values()

        def command(**options: Any) -> Any:
            # only the options the user gave reach the model, so its `model_fields_set` says what was chosen
            # (e.g. `--top-model sum` fills in a width left out but refuses a conflicting one given)
            context = click.get_current_context(silent=True)
            configs = []
            for schema, group in zip(schemas, groups, strict=True):
                values = {s.name: options.pop(s.name) for s in group}
                given = {name: value for name, value in values.items()
                         if context is None or context.get_parameter_source(name) is not ParameterSource.DEFAULT}
                configs.append(config_from_options(schema, given))
            return func(*configs, **options)

        command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
        command.__annotations__ = {p.name: p.annotation for p in params}
        command.__name__, command.__doc__ = func.__name__, func.__doc__
        return command

    return wrap


def option_table(schema: type[BaseModel], flower: bool = False) -> str:
    """docs/CLI.md's table of `schema`'s settings: flag ("-": not a CLI option), field, [Flower key,] default."""
    header = ["flag", "field", *(["Flower key"] if flower else []), "default"]
    rows = [header, ["---"] * len(header)]
    for s in settings(schema):
        default = "required" if s.info.is_required() else f"`{s.default!r}`"
        flower_key = [f"`{s.flower}`" if s.flower else "-"] if flower else []
        rows.append([f"`{s.flag}`" if s.flag else "-", f"`{'.'.join(s.path)}`", *flower_key, default])
    return "\n".join("| " + " | ".join(row) + " |" for row in rows)
