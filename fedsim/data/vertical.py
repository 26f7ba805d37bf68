"""The vertical view of a table: aligned sample ids, one feature block per feature party, labels, split."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from fedsim.errors import UserError, check

TASKS = ("regression", "binary")
PARTITIONS = ("contiguous", "random")
SCAN_CHUNK = 1 << 20


@dataclass
class FeatureBlock:
    """One feature party's columns, encoded (numeric standardised, categoricals one-hot) on the train split."""

    source_columns: list[str]
    columns: list[str]
    train: np.ndarray  # float32, (n_train, d)
    test: np.ndarray  # float32, (n_test, d)

    @property
    def dim(self) -> int:
        return self.train.shape[1]


@dataclass
class VerticalDataset:
    """Aligned samples split into train/test; `blocks[k]` belongs to feature party k, labels to the label party."""

    name: str
    task: str
    train_ids: np.ndarray
    test_ids: np.ndarray
    blocks: list[FeatureBlock]
    y_train: np.ndarray
    y_test: np.ndarray
    dropped_ids: int = 0
    dropped_by_party: list[int] = field(default_factory=list)

    @property
    def parties(self) -> int:
        return len(self.blocks)

    @property
    def n_train(self) -> int:
        return len(self.train_ids)

    @property
    def n_test(self) -> int:
        return len(self.test_ids)


def validate_target(target: pd.Series, task: str | None) -> tuple[np.ndarray, str]:
    """Check the label column and infer the task: two distinct values -> binary, numeric otherwise -> regression."""
    check(task is None or task in TASKS, f"task {task!r} is not one of: {', '.join(TASKS)}")
    check(len(target) > 0, "the dataset has no rows")
    numeric = pd.api.types.is_numeric_dtype(target) and not pd.api.types.is_bool_dtype(target)
    if target.isna().any():
        raise UserError(f"target column {target.name!r} has missing (NaN) labels in {int(target.isna().sum())} rows")
    values = _two_values(target)  # the distinct values if there are at most two (a full unique() is costly)
    if task is None:
        task = "binary" if len(values) == 2 else "regression"
    if task == "regression":
        check(numeric, f"target column {target.name!r} is not numeric; a regression target must be numbers")
        y = target.to_numpy(dtype=np.float64)
        check(bool(np.isfinite(y).all()), f"target column {target.name!r} has infinite labels")
        return y, task
    check(len(values) == 2,
          f"a binary target needs exactly two distinct values; {target.name!r} has {len(target.unique())}")
    if numeric and set(np.asarray(values, dtype=np.float64)) <= {0.0, 1.0}:
        return target.to_numpy(dtype=np.float64), task
    positive = sorted(map(str, values))[1]  # the larger value (in string order) is the positive class
    return (target.astype(str) == positive).to_numpy(dtype=np.float64), task


def _two_values(target: pd.Series) -> list:
    """The target's distinct values when there are at most two, else the first three found (in order of
    appearance, like `unique()`), scanning in chunks so a 10M-row column is never copied whole."""
    values, found = target.to_numpy(), []
    for start in range(0, len(values), SCAN_CHUNK):
        chunk = values[start : start + SCAN_CHUNK]
        while len(found) < 3:
            new = np.ones(len(chunk), dtype=bool)
            for value in found:
                new &= chunk != value
            hits = np.flatnonzero(new)
            if not hits.size:
                break
            found.append(chunk[hits[0]])
        if len(found) == 3:
            break
    return found


def partition_columns(columns: Sequence[str], parties: int, how: str, rng: np.random.Generator) -> list[list[str]]:
    """Split the columns over the feature parties, contiguously or at random (seeded)."""
    check(parties >= 1, f"parties must be >= 1, got {parties}")
    check(how in PARTITIONS, f"partition {how!r} is not one of: {', '.join(PARTITIONS)}")
    check(
        parties <= len(columns),
        f"{parties} feature parties but only {len(columns)} feature columns; use --parties <= {len(columns)}",
    )
    order = list(columns) if how == "contiguous" else [columns[i] for i in rng.permutation(len(columns))]
    return [list(part) for part in np.array_split(np.array(order, dtype=object), parties)]


def _column_stats(train_values: np.ndarray) -> tuple[float, float]:
    """Mean and std (float64) of a numeric column's finite training values; (0, 1) when there are none."""
    finite = np.isfinite(train_values)
    if not finite.any():
        return 0.0, 1.0
    kept = train_values if finite.all() else train_values[finite]
    std = float(kept.std())
    return float(kept.mean()), std if std > 0 else 1.0


def _write_standardised(values: np.ndarray, rows: np.ndarray, mean: float, std: float, out: np.ndarray) -> None:
    """`out[i] = (values[rows[i]] - mean) / std` in float64 maths, missing values -> 0 (the training mean);
    in chunks, so no float64 copy of a 10M-row column is held."""
    for start in range(0, len(rows), SCAN_CHUNK):
        part = values[rows[start : start + SCAN_CHUNK]].astype(np.float64)
        out[start : start + len(part)] = np.where(np.isfinite(part), (part - mean) / std, 0.0)


def _encode_block(table: pd.DataFrame, source_columns: list[str], train_idx: np.ndarray,
                  test_idx: np.ndarray) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Standardise numeric columns and one-hot encode the others, fitting only on the training rows.

    Each encoded column is written straight into the block's contiguous float32 arrays, so a 10M-row table
    never holds a float64 copy of the whole block (only of one column at a time)."""
    categories: dict[str, list[str] | None] = {}
    for column in source_columns:
        values = table[column]
        numeric = pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values)
        categories[column] = None if numeric else sorted(values.iloc[train_idx].astype(str).unique())
    names = [str(c) if cats is None else f"{c}={cat}" for c, cats in categories.items() for cat in (cats or [None])]
    train = np.empty((len(train_idx), len(names)), dtype=np.float32)
    test = np.empty((len(test_idx), len(names)), dtype=np.float32)
    j = 0
    for column, cats in categories.items():
        values = table[column]
        if cats is None:
            values = values.to_numpy(dtype=np.float64 if pd.api.types.is_bool_dtype(values) else None)
            mean, std = _column_stats(values[train_idx].astype(np.float64))
            _write_standardised(values, train_idx, mean, std, train[:, j])
            _write_standardised(values, test_idx, mean, std, test[:, j])
            j += 1
            continue
        s_train, s_test = values.iloc[train_idx].astype(str), values.iloc[test_idx].astype(str)
        for category in cats:
            train[:, j], test[:, j] = (s_train == category).to_numpy(), (s_test == category).to_numpy()
            j += 1
    return names, train, test


def split_indices(n: int, y: np.ndarray, task: str, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded train/test split, stratified for binary tasks so both splits hold both classes."""
    from sklearn.model_selection import train_test_split

    check(0 < test_fraction < 1, f"test fraction must lie in (0, 1), got {test_fraction}")
    check(n >= 2, f"need at least 2 aligned samples to split into train and test, got {n}")
    stratify = y if task == "binary" and np.bincount(y.astype(int)).min() >= 2 else None
    train, test = train_test_split(np.arange(n), test_size=test_fraction, random_state=seed, stratify=stratify)
    return np.sort(train), np.sort(test)


def align_parties(label_ids: pd.Index, party_ids: Sequence[pd.Index]) -> tuple[pd.Index, int, list[int]]:
    """Intersect the parties' sample ids (order as the label party lists them); report what was dropped."""
    common = label_ids
    for ids in party_ids:
        check(ids.is_unique, "a feature party lists a sample id twice")
        common = common.intersection(ids, sort=False)
    check(label_ids.is_unique, "the label party lists a sample id twice")
    union = label_ids
    for ids in party_ids:
        union = union.union(ids, sort=False)
    check(len(common) > 0, "no sample id is held by every party: the dataset is empty after alignment")
    dropped_by_party = [len(ids) - len(common) for ids in [label_ids, *party_ids]]
    return common, len(union) - len(common), dropped_by_party


def build_vertical(
    name: str,
    party_tables: Sequence[pd.DataFrame],
    labels: pd.Series,
    task: str | None,
    seed: int,
    test_fraction: float = 0.2,
    party_columns: Sequence[Sequence[str]] | None = None,
    release_source: bool = False,
) -> VerticalDataset:
    """Align per-party tables (indexed by sample id, any order) with the labels and encode each block.

    `party_columns[k]` picks party k's columns of `party_tables[k]` (default: all of them), so parties can
    share one table without copying it. With `release_source`, each source column is deleted from its table
    as soon as it is encoded (for tables the caller no longer needs: a 10M-row table then never exists in
    both its raw and its encoded form)."""
    common, dropped, dropped_by_party = align_parties(labels.index, [t.index for t in party_tables])
    shared = all(t.index.equals(common) for t in party_tables) and labels.index.equals(common)
    if not shared:  # reorder every table to the common ids (a one-table split already shares them)
        labels, party_tables = labels.loc[common], [t.loc[common] for t in party_tables]
    y, task = validate_target(labels, task)
    train_idx, test_idx = split_indices(len(common), y, task, test_fraction, seed)
    blocks = []
    for table, source_columns in zip(party_tables, party_columns or [t.columns for t in party_tables], strict=True):
        columns, train, test = _encode_block(table, list(source_columns), train_idx, test_idx)
        blocks.append(FeatureBlock(list(map(str, source_columns)), columns, train, test))
        if release_source:
            for column in source_columns:
                del table[column]
    ids = np.asarray(common)
    return VerticalDataset(
        name=name,
        task=task,
        train_ids=ids[train_idx],
        test_ids=ids[test_idx],
        blocks=blocks,
        y_train=y[train_idx],
        y_test=y[test_idx],
        dropped_ids=dropped,
        dropped_by_party=dropped_by_party,
    )


def vertical_from_table(
    name: str,
    features: pd.DataFrame,
    target: pd.Series,
    task: str | None,
    parties: int,
    seed: int,
    partition: str = "contiguous",
    test_fraction: float = 0.2,
    release_source: bool = False,
) -> VerticalDataset:
    """Partition one table's columns over `parties` feature parties (all parties hold every id);
    `release_source` as in `build_vertical`."""
    _, task = validate_target(target, task)  # label errors first: they are the likelier mistake
    rng = np.random.default_rng([seed, 1])
    groups = partition_columns(list(features.columns), parties, partition, rng)
    if not features.index.is_unique:
        raise UserError("the table's sample ids are not unique")
    return build_vertical(name, [features] * parties, target, task, seed, test_fraction, groups, release_source)
