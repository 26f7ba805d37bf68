"""`fedsim attacks`, `fedsim defenses`, `fedsim auc-methods`: what each plugin does and the parameters it takes.

Everything printed comes from the registries and each plugin's parameter schema (`fedsim.params`); the same
data renders the generated table of docs/plugins.md (`python -m fedsim.cli.generated` rewrites it, with the
other generated text).
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import typer

from fedsim.cli.common import emit_json
from fedsim.params import param_rows
from fedsim.registry import ATTACKS, GRADIENT_DEFENSES, LABEL_DEFENSES, Registry

WIDTH = 80
DOCS = Path(__file__).resolve().parents[2] / "docs" / "plugins.md"
BEGIN = "<!-- BEGIN GENERATED: python -m fedsim.cli.generated -->"
END = "<!-- END GENERATED -->"
REGENERATE = "python -m fedsim.cli.generated"


def describe_plugin(name: str, plugin: Any) -> dict[str, Any]:
    """One plugin as a JSON-ready dict: name, summary, tasks, parameters (and an attack's label needs)."""
    entry: dict[str, Any] = {"name": name, "summary": plugin.summary, "tasks": list(plugin.tasks)}
    if hasattr(plugin, "needs_known_labels"):
        entry["needs_known_labels"] = plugin.needs_known_labels
        entry["min_known"] = plugin.min_known if plugin.needs_known_labels else 0
    entry["params"] = param_rows(plugin.Params)
    return entry


def describe_registry(registry: Registry[Any]) -> list[dict[str, Any]]:
    return [describe_plugin(name, registry.get(name)) for name in registry.names()]


def catalogue() -> dict[str, Any]:
    """Every plugin kind: attacks, label and gradient defences, top-model DP-SGD and AUC methods."""
    from fedsim.evaluation.methods import METHODS
    from fedsim.privacy.dp_sgd import TopModelDP

    return {
        "attacks": describe_registry(ATTACKS),
        "label_defenses": describe_registry(LABEL_DEFENSES),
        "gradient_defenses": describe_registry(GRADIENT_DEFENSES),
        "top_model_dp": describe_plugin("top_dp", TopModelDP),
        "auc_methods": describe_registry(METHODS),
    }


def _default(row: dict[str, Any]) -> str:
    """The default as a user would type it: required, unset, true/false, or the value."""
    value = row["default"]
    if row["required"]:
        return "required"
    if value is None:
        return "unset"
    return str(value).lower() if isinstance(value, bool) else str(value)


# -- text ------------------------------------------------------------------------------------------------

def render_text(entries: list[dict[str, Any]], title: str) -> str:
    """Plain text, wrapped at 80 columns."""
    lines = [title, ""]
    for entry in entries:
        head = f"{entry['name']}  [{', '.join(entry['tasks'])}]"
        if entry.get("needs_known_labels"):
            head += f"  needs >= {entry['min_known']} known label{'s' * (entry['min_known'] > 1)}"
        lines.append(head)
        lines += textwrap.wrap(entry["summary"], WIDTH, initial_indent="  ", subsequent_indent="  ")
        for row in entry["params"]:
            default = "required" if row["required"] else f"default {_default(row)}"
            text = f"{row['name']} ({row['type']}; {default}): {row['description']}"
            lines += textwrap.wrap(text, WIDTH, initial_indent="    ", subsequent_indent="        ")
        if not entry["params"]:
            lines.append("    (no parameters)")
        lines.append("")
    return "\n".join(lines)


def _print(payload: dict[str, Any], sections: list[tuple[str, list[dict[str, Any]]]], json_output: bool) -> None:
    if json_output:
        emit_json(payload)
        return
    typer.echo("\n".join(render_text(entries, title) for title, entries in sections).rstrip())


def attacks_command(json_output: bool = typer.Option(False, "--json", help="Print one JSON object.")) -> None:
    """List the attacks: what each does, its tasks and parameters (--param KEY=VALUE)."""
    entries = describe_registry(ATTACKS)
    _print({"attacks": entries}, [("Attacks (fedsim attack --attack NAME --param KEY=VALUE)", entries)], json_output)


def defenses_command(json_output: bool = typer.Option(False, "--json", help="Print one JSON object.")) -> None:
    """List the label and gradient defences and top-model DP-SGD, with their parameters (--defense-param)."""
    data = catalogue()
    payload = {"label": data["label_defenses"], "gradient": data["gradient_defenses"],
               "top_model_dp": data["top_model_dp"]}
    _print(payload, [("Label defences (fedsim train --label-defense NAME --defense-param KEY=VALUE)", payload["label"]),
                     ("Gradient defences (fedsim train --gradient-defense NAME)", payload["gradient"]),
                     ("Top-model DP-SGD (--defense-param top_dp_*, with any defence but dp_gradient)",
                      [payload["top_model_dp"]])], json_output)


def auc_methods_command(json_output: bool = typer.Option(False, "--json", help="Print one JSON object.")) -> None:
    """List the private AUC methods with their settings (fedsim auc --method NAME)."""
    from fedsim.evaluation.methods import METHODS

    entries = describe_registry(METHODS)
    _print({"methods": entries}, [("AUC methods (fedsim auc --method NAME --epsilon EPS ...)", entries)],
           json_output)


# -- Markdown for docs/plugins.md ------------------------------------------------------------------------

def _cell(value: str) -> str:
    return value.replace("|", "\\|")


def _markdown_section(title: str, entries: list[dict[str, Any]]) -> list[str]:
    lines = [f"### {title}", ""]
    for entry in entries:
        lines += [f"#### `{entry['name']}`", "", entry["summary"], "", f"Tasks: {', '.join(entry['tasks'])}."]
        if entry.get("needs_known_labels"):
            lines[-1] += f" Needs at least {entry['min_known']} known label{'s' * (entry['min_known'] > 1)}."
        lines.append("")
        if entry["params"]:
            lines += ["| parameter | type | default | description |", "|---|---|---|---|"]
            lines += [f"| `{r['name']}` | {_cell(r['type'])} | {_cell(_default(r))} | {_cell(r['description'])} |"
                      for r in entry["params"]]
        else:
            lines.append("No parameters.")
        lines.append("")
    return lines


def render_markdown() -> str:
    """The generated part of docs/plugins.md (between the markers)."""
    data = catalogue()
    lines = _markdown_section("Attacks", data["attacks"])
    lines += _markdown_section("Label defences", data["label_defenses"])
    lines += _markdown_section("Gradient defences", data["gradient_defenses"])
    lines += _markdown_section("Top-model DP-SGD", [data["top_model_dp"]])
    lines += _markdown_section("AUC methods", data["auc_methods"])
    return "\n".join(lines).rstrip() + "\n"


def with_table(document: str) -> str:
    """`document` with the text between the markers replaced by the current table."""
    head, begin, rest = document.partition(BEGIN)
    _, end, tail = rest.partition(END)
    if not begin or not end:
        raise ValueError(f"docs/plugins.md lacks the markers {BEGIN!r} and {END!r}")
    return f"{head}{BEGIN}\n\n{render_markdown()}\n{END}{tail}"

