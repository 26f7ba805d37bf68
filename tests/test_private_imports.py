"""No module imports another module's private names: a `_name` is free to change without a second reader
(issue 18: `bench_multiclass` used to import `report._markdown_table`)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("fedsim", "experiments", "attacks", "defenses")


def private_imports(path: Path) -> list[str]:
    """`from module import _name` lines of one file (dunders such as `__version__` are public)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            found += [f"{path}:{node.lineno}: from {node.module} import {alias.name}" for alias in node.names
                      if alias.name.startswith("_") and not alias.name.startswith("__")]
    return found


@pytest.mark.parametrize("folder", FOLDERS)
def test_no_private_cross_imports(folder: str) -> None:
    found = [line for path in sorted((ROOT / folder).rglob("*.py")) for line in private_imports(path)]
    assert not found, "private names imported from another module:\n" + "\n".join(found)


def test_the_check_finds_a_private_import(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("from __future__ import annotations\n\n"
                      "def f():\n    from fedsim.experiments.report_markdown import _hidden, markdown_table\n")
    assert private_imports(module) == [f"{module}:4: from fedsim.experiments.report_markdown import _hidden"]
