"""Plain help pages (80 columns) that list the valid names from the registries, filled in when help is shown.

Help texts may hold `{attacks}`, `{label_defenses}`, `{gradient_defenses}`, `{datasets}`, `{auc_methods}` and
`{synthetic_scores}`.
Looking the names up loads the plugin packages (torch and all), so it happens when `--help` is formatted,
not when the CLI starts.
"""

from __future__ import annotations

import click
from typer.core import TyperCommand


class _Names(dict):
    """Placeholder name -> the registry's names, looked up on first use."""

    def __missing__(self, key: str) -> str:
        from fedsim.data import DATASETS
        from fedsim.evaluation.methods import METHODS
        from fedsim.evaluation.synthetic import SYNTHETIC
        from fedsim.registry import ATTACKS, GRADIENT_DEFENSES, LABEL_DEFENSES

        registries = {"attacks": ATTACKS, "label_defenses": LABEL_DEFENSES, "gradient_defenses": GRADIENT_DEFENSES,
                      "datasets": DATASETS, "auc_methods": METHODS, "synthetic_scores": SYNTHETIC}
        self[key] = ", ".join(registries[key].names())
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
        """Typer escapes "[default: ...]" for rich markup even when help is plain text; undo that."""
        sections: dict[str, list[tuple[str, str]]] = {"Arguments": [], "Options": []}
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is not None:
                name, text = record
                section = "Arguments" if param.param_type_name == "argument" else "Options"
                sections[section].append((name, text.replace("\\[", "[")))
        for title, rows in sections.items():
            if rows:
                with formatter.section(title):
                    formatter.write_dl(rows)
