"""User tables from CSV or Parquet files."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from pyarrow import ArrowException

from fedsim.errors import UserError, check

SUFFIXES = (".csv", ".parquet", ".pq")


def read_table(path: str | Path, target: str, id_column: str | None = None) -> tuple[pd.DataFrame, pd.Series]:
    """Read a user file and split it into features and the target column (indexed by `id_column` if given)."""
    path = Path(path)
    check(path.suffix.lower() in SUFFIXES, f"data file {str(path)!r} must end in one of {', '.join(SUFFIXES)}")
    check(path.is_file(), f"data file {str(path)!r} does not exist")
    try:
        table = pd.read_csv(path) if path.suffix.lower() == ".csv" else pd.read_parquet(path)
    except (OSError, ValueError, ArrowException) as exc:  # unreadable, empty, not UTF-8, malformed, not parquet
        raise UserError(f"cannot read data file {str(path)!r}: {exc}".splitlines()[0]) from exc
    columns = ", ".join(map(str, table.columns))
    check(target in table.columns, f"target column {target!r} is not in {str(path)!r}; columns: {columns}")
    if id_column is not None:
        check(id_column in table.columns, f"id column {id_column!r} is not in {str(path)!r}")
        check(table[id_column].is_unique, f"id column {id_column!r} has duplicate ids")
        table = table.set_index(id_column)
    features = table.drop(columns=[target])
    check(features.shape[1] >= 1, f"data file {str(path)!r} has no feature columns besides the target")
    return features, table[target]
