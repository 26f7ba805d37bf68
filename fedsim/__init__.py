"""fedsim: a simulator for label privacy in vertical federated learning and split learning.

The Python API (`fedsim.train`, `fedsim.attack`, `fedsim.audit`, `fedsim.evaluate_auc`, `fedsim.run_grid` and
their result types) lives in `fedsim.api` and loads on first use, so `import fedsim` (and `fedsim --help`)
stays fast: torch and the plugins load only when a function is looked up. docs/python-api.md is the guide.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # for type checkers and editors only; at run time `__getattr__` loads them
    from fedsim.api import (
        AttackReport,
        AucReport,
        AuditReport,
        BenchSummary,
        TrainConfig,
        TrainResult,
        attack,
        audit,
        evaluate_auc,
        run_grid,
        train,
    )

__version__: str  # the installed version, read by `__getattr__` on first use
__all__ = ["AttackReport", "AucReport", "AuditReport", "BenchSummary", "TrainConfig", "TrainResult", "__version__",
           "attack", "audit", "evaluate_auc", "run_grid", "train"]
API = frozenset(__all__) - {"__version__"}


def __getattr__(name: str) -> Any:
    """The lazy facade: `fedsim.train` imports `fedsim.api` (torch, the plugins) the first time it is used."""
    if name in API:
        return getattr(importlib.import_module("fedsim.api"), name)
    if name == "__version__":  # importlib.metadata costs ~50 ms: read only when asked
        from importlib import metadata

        return metadata.version("fedsim")
    raise AttributeError(f"module 'fedsim' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *API])
