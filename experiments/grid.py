"""Benchmark grids in TOML: finding a grid file (a path or a shipped name) and loading it, fully validated.

A grid has up to two kinds of study. `[leakage]` (or several `[[leakage]]` tables, e.g. one per dataset
with its own public label range): datasets x feature parties x runtimes x defences (each through
its epsilons or a swept strength parameter) x seeds, where every cell trains once and then runs all the
listed attacks (each at its known-label fractions) on the same transcript; with `[leakage.audit]`, each
cell also runs a one-run canary audit (its own training run). `[auc]`: score sources x
methods x epsilons x clients x buckets x seeds for private AUC. Every mistake in a grid file is reported
as one line naming the key and what is allowed, before any work starts.

The parts: `schema` (the TOML's pydantic models), `expansion` (grid -> cells and their keys), `names`
(checks against the registries).
"""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path

from fedsim.errors import UserError
from fedsim.experiments.expansion import expand
from fedsim.experiments.schema import GridSpec, parse_grid

SHIPPED = "grids"


def shipped_grids() -> list[str]:
    """Names of the grids that ship with the package (`quick`, ...)."""
    folder = resources.files("fedsim.experiments") / SHIPPED
    return sorted(p.name.removesuffix(".toml") for p in folder.iterdir() if p.name.endswith(".toml"))


def resolve_grid_path(grid: str | Path) -> Path:
    """A path to a TOML file, or the name of a shipped grid."""
    path = Path(grid)
    if path.is_file():
        return path
    if path.suffix == "" and str(grid) in shipped_grids():
        return Path(str(resources.files("fedsim.experiments") / SHIPPED / f"{grid}.toml"))
    raise UserError(f"grid file {str(grid)!r} does not exist; give a TOML path or one of: "
                    f"{', '.join(shipped_grids())}")


def load_grid(grid: str | Path) -> tuple[GridSpec, str]:
    """Read, parse and fully validate a grid (schema and names); returns the spec and the file's text."""
    path = resolve_grid_path(grid)
    text = path.read_text()
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{path.name}: malformed TOML: {exc}") from None
    spec = parse_grid(raw, path.name)
    expand(spec, path.name)  # validates every cell's training config and the names it uses
    return spec, text
