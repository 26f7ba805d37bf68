"""The layers import one way and no module takes part in an import cycle (docs/architecture.md).

Every import statement of every module counts, at module level or inside a function: a late import hides
a dependency from the reader, not from this test.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# source folder -> the package it installs as (pyproject.toml's package-dir)
FOLDERS = {"fedsim": "fedsim", "attacks": "fedsim.attacks", "defenses": "fedsim.defenses",
           "experiments": "fedsim.experiments"}
CORE, PLUGINS, EXPERIMENTS, TOP = 0, 1, 2, 3
# longest prefix wins; everything else under fedsim is core
LAYERS = {
    "fedsim.attacks": PLUGINS,
    "fedsim.defenses": PLUGINS,
    "fedsim.experiments": EXPERIMENTS,
    "fedsim.audit": EXPERIMENTS,
    "fedsim.testing": EXPERIMENTS,  # test helpers: the contract checks run plugins
    "fedsim.cli": TOP,
    "fedsim.api": TOP,  # the Python API: train, attack, audit, AUC and grids, one call each
    "fedsim.__main__": TOP,
    "fedsim.runtime.flower.apps": TOP,
}
# The one allowed upward edge: `fedsim/__init__.py` re-exports the Python API (a top-layer module) lazily, in its
# module `__getattr__` via `importlib.import_module` (and under `if TYPE_CHECKING` for type checkers), so that
# `import fedsim` loads nothing above core; test_the_facade_is_lazy proves it at run time.
FACADE = ("fedsim", "fedsim.api")
NAMES = {CORE: "core", PLUGINS: "plugins", EXPERIMENTS: "experiments", TOP: "top layer"}


def modules() -> dict[str, Path]:
    found = {}
    for folder, package in FOLDERS.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = list(path.relative_to(ROOT / folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join([package, *parts])] = path
    return found


def layer(module: str) -> int:
    best = max((p for p in LAYERS if module == p or module.startswith(p + ".")), key=len, default=None)
    return LAYERS[best] if best is not None else CORE


def plugin_package(module: str) -> str | None:
    for package in ("fedsim.attacks", "fedsim.defenses"):
        if module == package or module.startswith(package + "."):
            return package
    return None


def imports(module: str, path: Path, known: set[str]) -> set[str]:
    """The project's modules that `module` imports (explicit edges: a parent package's __init__ does not count)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr == "import_module" and node.args and isinstance(node.args[0], ast.Constant)):
            names = [str(node.args[0].value)]  # importlib.import_module("fedsim.x") is an import too
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}".rstrip(".")
            # `from package import module` depends on the module; `from module import name` on the module
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        for name in names:
            if name.split(".")[0] in FOLDERS and name not in known and name.split(".")[0] != "fedsim":
                raise AssertionError(f"{module} imports {name!r}: plugin packages install under fedsim.")
            if name in known:
                found.add(name)
    found.discard(module)
    return found


def graph() -> dict[str, set[str]]:
    found = modules()
    return {m: imports(m, p, set(found)) for m, p in found.items()}


def test_every_folder_installs_under_fedsim():
    assert {m.split(".")[1] for m in modules() if m.count(".")} >= {"attacks", "defenses", "experiments"}


def test_no_import_points_upward():
    upward = []
    for module, targets in graph().items():
        for target in targets:
            if (module, target) == FACADE:
                continue
            if layer(target) > layer(module):
                upward.append(f"{module} ({NAMES[layer(module)]}) imports {target} ({NAMES[layer(target)]})")
            mine, theirs = plugin_package(module), plugin_package(target)
            if mine and theirs and mine != theirs:
                upward.append(f"plugin {module} imports another plugin package: {target}")
    assert not upward, "\n".join(sorted(upward))


def test_no_import_cycles():
    """Tarjan's strongly connected components: any component of two or more modules is a cycle."""
    edges = graph()
    edges[FACADE[0]].discard(FACADE[1])  # loaded on attribute access, after `fedsim` has finished importing
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in edges[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    assert not cycles, "import cycles: " + "; ".join(" <-> ".join(c) for c in cycles)


def test_the_checker_sees_a_late_upward_import(tmp_path):
    """A positive control: an import inside a function body is an edge like any other."""
    source = tmp_path / "m.py"
    source.write_text("def f():\n    from fedsim.cli.app import main\n    return main\n")
    assert imports("fedsim.data.m", source, {"fedsim.cli.app", "fedsim.cli"}) == {"fedsim.cli.app"}


def test_the_checker_sees_import_module(tmp_path):
    """A string import through importlib is an edge: the lazy facade cannot be copied to hide an upward import."""
    source = tmp_path / "m.py"
    source.write_text("import importlib\ndef f():\n    return importlib.import_module('fedsim.cli.app')\n")
    assert imports("fedsim.data.m", source, {"fedsim.cli.app", "fedsim.cli"}) == {"fedsim.cli.app"}


def test_the_facade_is_lazy():
    """`import fedsim` loads neither the API nor torch; `fedsim.train` then resolves to `fedsim.api.train`."""
    import subprocess
    import sys

    code = ("import sys, fedsim; lazy = not {'fedsim.api', 'torch', 'fedsim.attacks'} & set(sys.modules); "
            "import fedsim.api; print(lazy, fedsim.train is fedsim.api.train, callable(fedsim.audit))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["True", "True", "True"]
