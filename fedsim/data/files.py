"""User tables from CSV or Parquet files.

Sample ids: `--id-column NAME` names the id column. Without it, a column named `id` is the id column; any
other column that looks like a row id (unique integers 0..n-1 or 1..n, e.g. a saved pandas index) is refused
rather than silently trained on as a feature; `--id-column none` keeps every column as a feature and uses
row numbers as ids.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from pyarrow import ArrowException

from fedsim.errors import UserError, check

SUFFIXES = (".csv", ".parquet", ".pq")
DEFAULT_ID_COLUMN = "id"
NO_ID_COLUMN = "none"


def read_frame(path: str | Path) -> pd.DataFrame:
    """Read a CSV or Parquet file, with one-line errors for a wrong suffix, a missing or an unreadable file."""
    path = Path(path)
    check(path.suffix.lower() in SUFFIXES, f"data file {str(path)!r} must end in one of {', '.join(SUFFIXES)}")
    check(path.is_file(), f"data file {str(path)!r} does not exist")
    csv = path.suffix.lower() == ".csv"
    try:
        # the column names as written: pandas renames a repeated CSV name ("a" -> "a.1") without a word
        names = ([n for n in pd.read_csv(path, header=None, nrows=1, dtype=str).iloc[0] if isinstance(n, str)]
                 if csv else list(pq.read_schema(path).names))
        repeated = sorted({n for n in names if names.count(n) > 1})
        check(not repeated, f"data file {str(path)!r} names column {repeated[0] if repeated else ''!r} more than "
                            f"once; give every column its own name")
        if csv:
            return pd.read_csv(path)
        # one block per column, Arrow buffers released as they convert: a 10M-row file is never held twice
        return pq.read_table(path).to_pandas(split_blocks=True, self_destruct=True)
    except UserError:
        raise
    except (OSError, ValueError, ArrowException) as exc:  # unreadable, empty, not UTF-8, malformed, not parquet
        raise UserError(f"cannot read data file {str(path)!r}: {exc}".splitlines()[0]) from exc


def read_table(path: str | Path, target: str, id_column: str | None = None) -> tuple[pd.DataFrame, pd.Series]:
    """Read a user file and split it into features and the target column, indexed by the sample ids."""
    table = read_frame(path)
    columns = ", ".join(map(str, table.columns))
    check(target in table.columns, f"target column {target!r} is not in {str(path)!r}; columns: {columns}")
    id_column = resolve_id_column(table, target, id_column, str(path))
    if id_column is not None:
        check(table[id_column].is_unique, f"id column {id_column!r} has duplicate ids; name the id column with "
                                          f"--id-column NAME, or --id-column none to use row numbers")
        table = table.set_index(id_column)
    features = table.drop(columns=[target])
    check(features.shape[1] >= 1, f"data file {str(path)!r} has no feature columns besides the target")
    return features, table[target]


def resolve_id_column(table: pd.DataFrame, target: str, id_column: str | None, path: str) -> str | None:
    """The id column to index by (None: row numbers); refuses a row-id-like column that nobody named."""
    if id_column == NO_ID_COLUMN:
        return None
    if id_column is not None:
        check(id_column in table.columns, f"id column {id_column!r} is not in {path!r}; columns: "
                                          f"{', '.join(map(str, table.columns))}")
        check(id_column != target, f"--id-column {id_column!r} is the target column")
        return id_column
    if DEFAULT_ID_COLUMN in table.columns and target != DEFAULT_ID_COLUMN:
        return DEFAULT_ID_COLUMN
    for column in table.columns:
        if column != target and looks_like_row_id(table[column]):
            raise UserError(f"column {column!r} of {path!r} looks like a row id (unique integers 0..n-1 or 1..n), "
                            f"not a feature: pass --id-column {column} to use it as the sample ids, or "
                            f"--id-column none to keep it as a feature")
    return None


def looks_like_row_id(column: pd.Series) -> bool:
    """Unique integers 0..n-1 or 1..n in any order (three rows or more: below that a 0/1 feature would match)."""
    n = len(column)
    if n < 3 or not pd.api.types.is_integer_dtype(column) or pd.api.types.is_bool_dtype(column):
        return False
    values = np.sort(column.to_numpy())
    return bool(np.array_equal(values, np.arange(n)) or np.array_equal(values, np.arange(1, n + 1)))
