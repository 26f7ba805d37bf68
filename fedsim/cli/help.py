"""Plain help pages (80 columns) that list the valid names from the registries, filled in when help is shown.

Help texts may hold `{attacks}`, `{label_defenses}`, `{gradient_defenses}`, `{datasets}`, `{auc_methods}` and
`{synthetic_scores}`.
Looking the names up loads the plugin packages (torch and all: seconds), so a help page of a process that has
loaded none reads the built-in names from `builtin_names.json` instead (written by `python -m
fedsim.cli.generated` from the registries; a test fails while it is stale), unless a third-party plugin
package is installed: then the registries are loaded and its names listed too.
"""

from __future__ import annotations

import json
from pathlib import Path

import click
import typer.core
from typer.core import TyperCommand

BUILTIN_NAMES = Path(__file__).with_name("builtin_names.json")
BUILTIN_PLUGINS = {"fedsim.attacks", "fedsim.defenses"}  # fedsim's own `fedsim.plugins` entry points


def registry_names() -> dict[str, list[str]]:
    """Every placeholder's names, from the registries (loads the plugin packages)."""
    from fedsim.data import DATASETS
    from fedsim.evaluation.methods import METHODS
    from fedsim.evaluation.synthetic import SYNTHETIC
    from fedsim.registry import ATTACKS, GRADIENT_DEFENSES, LABEL_DEFENSES

    registries = {"attacks": ATTACKS, "label_defenses": LABEL_DEFENSES, "gradient_defenses": GRADIENT_DEFENSES,
                  "datasets": DATASETS, "auc_methods": METHODS, "synthetic_scores": SYNTHETIC}
    return {key: registry.names() for key, registry in registries.items()}


def _only_builtin_names() -> bool:
    """True when the built-in index gives the current names: no registry is loaded in this process (one that
    is may hold plugins registered at run time) and no third-party plugin package is installed."""
    import sys
    from importlib.metadata import entry_points

    from fedsim.registry import PLUGIN_GROUP

    loaded = any(module in sys.modules for module in (*BUILTIN_PLUGINS, "fedsim.evaluation.methods"))
    return not loaded and {e.value for e in entry_points(group=PLUGIN_GROUP)} <= BUILTIN_PLUGINS


class _Names(dict):
    """Placeholder name -> the registry's names, looked up on first use."""

    def __missing__(self, key: str) -> str:
        names = json.loads(BUILTIN_NAMES.read_text()) if _only_builtin_names() else registry_names()
        self.update({k: ", ".join(v) for k, v in names.items()})
        return self[key]


def fill_names(text: str | None) -> str | None:
    return text.format_map(_Names()) if text and "{" in text else text


class HelpCommand(TyperCommand):
    """A command whose help names the registries' current entries (plugins included) and prints plain text."""

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        self.help = fill_names(self.help)
        for param in self.params:
            if isinstance(param, click.Option):
                param.help = fill_names(param.help)
        super().format_help(ctx, formatter)

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """Typer escapes "[default: ...]" for rich markup whenever rich is installed, even for plain help, and
        imports rich's markdown stack to do it (~0.1 s of a help page): plain help needs neither, so the help
        records are made with typer's rich switch off."""
        sections: dict[str, list[tuple[str, str]]] = {"Arguments": [], "Options": []}
        has_rich, typer.core.HAS_RICH = typer.core.HAS_RICH, False
        try:
            records = [(param, param.get_help_record(ctx)) for param in self.get_params(ctx)]
        finally:
            typer.core.HAS_RICH = has_rich
        for param, record in records:
            if record is not None:
                section = "Arguments" if param.param_type_name == "argument" else "Options"
                sections[section].append(record)
        for title, rows in sections.items():
            if rows:
                with formatter.section(title):
                    formatter.write_dl(rows)
