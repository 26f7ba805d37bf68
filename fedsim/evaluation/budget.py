"""A label holder's release ledger: every private evaluation of one label set is recorded, and a release that
would take the total past a budget is refused before anything is released.

Repeated AUC releases on the same labels reveal them (Whitehill, AAAI 2019), so the releases compose. We use
basic composition: k releases that are (eps_i, delta_i)-DP on the same labels are (sum eps_i, sum delta_i)-DP
(Dwork & Roth, Thm 3.16). It holds for any mix of mechanisms and adaptively chosen releases, and it is what
the budget check adds up. A release of R repeats counts R times; `fedsim auc --curves` counts once (the
curves are post-processing of the AUC's release); a release without noise (exact, epsilon = inf) has an
infinite cost and is refused under any budget. (`fedsim.privacy.ledger` composes a training run's Gaussian
steps with an accountant; here every event is a pure or (eps, delta) release, so its sum is all we need.)

The label set is keyed by SHA-256 of the labels: the ledger is the label holder's own file (a hash of few
labels can be inverted by trying all label vectors: do not publish it).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from fedsim.errors import UserError, check

FORMAT = 1


def label_set(labels: np.ndarray) -> str:
    """The key of a label set: SHA-256 of its 0/1 labels (int8, in order)."""
    return hashlib.sha256(np.asarray(labels, dtype=np.int8).tobytes()).hexdigest()


def read_ledger(path: Path) -> dict[str, Any]:
    """The ledger at `path` (an empty one if the file does not exist); one-line error for a foreign file."""
    if not path.exists():
        return {"format": FORMAT, "releases": []}
    try:
        ledger = json.loads(path.read_text())
    except (OSError, ValueError):
        raise UserError(f"--ledger {str(path)!r} is not a fedsim release ledger (unreadable JSON)") from None
    check(isinstance(ledger, dict) and ledger.get("format") == FORMAT and isinstance(ledger.get("releases"), list),
          f"--ledger {str(path)!r} is not a fedsim release ledger (format {FORMAT})")
    return ledger


def spent(ledger: dict[str, Any], key: str) -> tuple[float, float]:
    """(sum eps, sum delta) of the releases on label set `key` (null epsilon: no privacy, infinite)."""
    rows = [r for r in ledger["releases"] if r["label_set"] == key]
    epsilon = sum(math.inf if r["epsilon"] is None else r["epsilon"] for r in rows)
    return float(epsilon), float(sum(r.get("delta") or 0.0 for r in rows))


def check_budget(path: Path, key: str, epsilon: float, budget: float | None) -> None:
    """Refuse (one line, exit 2) a release of `epsilon` that would take label set `key` past `budget`."""
    check(budget is None or (math.isfinite(budget) and budget > 0), f"--budget must be a number > 0, got {budget}")
    if budget is None:
        return
    used, _ = spent(read_ledger(path), key)
    check(used + epsilon <= budget * (1 + 1e-12),
          f"refused: this release costs epsilon {epsilon:g} and the ledger {str(path)!r} already holds {used:g} on "
          f"these labels: {used + epsilon:g} > --budget {budget:g} (basic composition)")


def record(path: Path, key: str, epsilon: float, delta: float | None, what: dict[str, Any]) -> dict[str, Any]:
    """Append one release and write the ledger atomically (a temporary file renamed over it)."""
    ledger = read_ledger(path)
    ledger["releases"].append({"label_set": key, "epsilon": None if math.isinf(epsilon) else epsilon,
                               "delta": delta, **what})
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(ledger, indent=1) + "\n")
    os.replace(temporary, path)
    return ledger
