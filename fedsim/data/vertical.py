"""The vertical view of a table: aligned sample ids, one feature block per feature party, labels, split."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from fedsim.errors import UserError, check

TASKS = ("regression", "binary", "multiclass")
CLASSIFICATION = ("binary", "multiclass")
PARTITIONS = ("contiguous", "random")


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
    classes: list[str] = field(default_factory=list)  # class names, index = class id; empty for regression
    label_block: FeatureBlock | None = None  # the label party's own columns (--label-party-features), if any

    @property
    def n_classes(self) -> int:
        """Number of classes (2 for binary, K for multiclass); 0 for regression."""
        return len(self.classes)

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
    """Check the label column and infer the task (see `encode_target`); returns the labels and the task."""
    y, task, _ = encode_target(target, task)
    return y, task


def encode_target(target: pd.Series, task: str | None) -> tuple[np.ndarray, str, list[str]]:
    """Check the label column, infer the task and encode the labels as float64: values (regression), 0/1
    (binary) or class indices 0..K-1 (multiclass); also returns the class names (index = class id).

    Inference: two distinct values -> binary; a non-numeric column with more values -> multiclass; numeric
    otherwise -> regression (an integer column is multiclass only with `--task multiclass`).
    """
    check(task is None or task in TASKS, f"task {task!r} is not one of: {', '.join(TASKS)}")
    check(len(target) > 0, "the dataset has no rows")
    numeric = pd.api.types.is_numeric_dtype(target) and not pd.api.types.is_bool_dtype(target)
    if target.isna().any():
        raise UserError(f"target column {target.name!r} has missing (NaN) labels in {int(target.isna().sum())} rows")
    values = target.unique()
    if task is None:
        task = "binary" if len(values) == 2 else ("regression" if numeric or len(values) < 2 else "multiclass")
    if task == "regression":
        check(numeric, f"target column {target.name!r} is not numeric; a regression target must be numbers "
                       f"(or use --task multiclass for classes)")
        y = target.to_numpy(dtype=np.float64)
        check(bool(np.isfinite(y).all()), f"target column {target.name!r} has infinite labels")
        return y, task, []
    if task == "multiclass":
        return _encode_classes(target, values, numeric)
    check(len(values) == 2, f"a binary target needs exactly two distinct values; {target.name!r} has "
                            f"{len(values)}" + ("; use --task multiclass" if len(values) > 2 else ""))
    if numeric and set(np.asarray(values, dtype=np.float64)) <= {0.0, 1.0}:
        return target.to_numpy(dtype=np.float64), task, ["0", "1"]
    names = sorted(map(str, values))  # the larger value (in string order) is the positive class
    return (target.astype(str) == names[1]).to_numpy(dtype=np.float64), task, names


def _encode_classes(target: pd.Series, values: np.ndarray, numeric: bool) -> tuple[np.ndarray, str, list[str]]:
    """Class indices of a multiclass target: classes sorted by value (numbers numerically, else as strings)."""
    check(len(values) >= 2, f"a multiclass target needs at least two classes; {target.name!r} has {len(values)}")
    if numeric:
        numbers = np.asarray(values, dtype=np.float64)
        check(bool(np.all(np.isfinite(numbers) & (numbers == np.round(numbers)))),
              f"a multiclass target must hold class names or whole numbers; {target.name!r} has fractional "
              f"values (use --task regression)")
        order = np.sort(numbers)
        return np.searchsorted(order, target.to_numpy(dtype=np.float64)).astype(np.float64), "multiclass", [
            str(int(v)) for v in order]
    names = sorted(map(str, values))
    return (pd.Categorical(target.astype(str), categories=names).codes.astype(np.float64), "multiclass", names)


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


def _encode_block(train: pd.DataFrame, test: pd.DataFrame) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Standardise numeric columns and one-hot encode the others, fitting only on the training rows."""
    names: list[str] = []
    train_parts: list[np.ndarray] = []
    test_parts: list[np.ndarray] = []
    for column in train.columns:
        col_train, col_test = train[column], test[column]
        if pd.api.types.is_bool_dtype(col_train):
            col_train, col_test = col_train.astype(np.float64), col_test.astype(np.float64)
        if pd.api.types.is_numeric_dtype(col_train):
            a = col_train.to_numpy(dtype=np.float64)
            b = col_test.to_numpy(dtype=np.float64)
            finite = np.isfinite(a)
            mean = float(a[finite].mean()) if finite.any() else 0.0
            std = float(a[finite].std()) if finite.any() else 1.0
            std = std if std > 0 else 1.0
            a = np.where(np.isfinite(a), (a - mean) / std, 0.0)  # missing values -> the training mean
            b = np.where(np.isfinite(b), (b - mean) / std, 0.0)
            names.append(str(column))
            train_parts.append(a[:, None])
            test_parts.append(b[:, None])
        else:
            s_train, s_test = col_train.astype(str), col_test.astype(str)
            for category in sorted(s_train.unique()):
                names.append(f"{column}={category}")
                train_parts.append((s_train == category).to_numpy(dtype=np.float64)[:, None])
                test_parts.append((s_test == category).to_numpy(dtype=np.float64)[:, None])
    return names, np.hstack(train_parts).astype(np.float32), np.hstack(test_parts).astype(np.float32)


def split_indices(n: int, y: np.ndarray, task: str, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded train/test split, stratified for classification (when every class has two rows or more) so both
    splits hold every class."""
    from sklearn.model_selection import train_test_split

    check(0 < test_fraction < 1, f"test fraction must lie in (0, 1), got {test_fraction}")
    check(n >= 2, f"need at least 2 aligned samples to split into train and test, got {n}")
    stratify = y if task in CLASSIFICATION and np.bincount(y.astype(int)).min() >= 2 else None
    train, test = train_test_split(np.arange(n), test_size=test_fraction, random_state=seed, stratify=stratify)
    return np.sort(train), np.sort(test)


def check_train_classes(y_train: np.ndarray, y_test: np.ndarray, classes: list[str]) -> None:
    """Every class of the test split must occur in the training split: the model cannot learn it otherwise."""
    missing = sorted(set(np.unique(y_test).astype(int)) - set(np.unique(y_train).astype(int)))
    if missing:
        raise UserError(f"class {classes[missing[0]]!r} occurs only in the test split; every class needs training "
                        f"rows (give it more rows or drop it)")


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
    label_table: pd.DataFrame | None = None,
) -> VerticalDataset:
    """Align per-party tables (indexed by sample id, any order) with the labels and encode each block.

    `label_table` holds the label party's own feature columns, indexed like `labels` (same party, same ids).
    """
    check(label_table is None or label_table.index.equals(labels.index),
          "the label party's feature table must list the same sample ids as its labels")
    common, dropped, dropped_by_party = align_parties(labels.index, [t.index for t in party_tables])
    labels = labels.loc[common]
    y, task, classes = encode_target(labels, task)
    train_idx, test_idx = split_indices(len(common), y, task, test_fraction, seed)
    if task in CLASSIFICATION:
        check_train_classes(y[train_idx], y[test_idx], classes)

    def encode(table: pd.DataFrame) -> FeatureBlock:
        table = table.loc[common]
        columns, train, test = _encode_block(table.iloc[train_idx], table.iloc[test_idx])
        return FeatureBlock(list(map(str, table.columns)), columns, train, test)

    blocks = [encode(table) for table in party_tables]
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
        classes=classes,
        label_block=encode(label_table) if label_table is not None else None,
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
    label_party_features: int = 0,
) -> VerticalDataset:
    """Partition one table's columns over `parties` feature parties (all parties hold every id).

    With `label_party_features` N > 0 the label party first keeps N columns for its own bottom model: the last
    N columns (contiguous) or N drawn at random (random, seeded); the feature parties split the rest.
    """
    _, task = validate_target(target, task)  # label errors first: they are the likelier mistake
    columns = list(features.columns)
    own = label_party_columns(columns, label_party_features, parties, partition, np.random.default_rng([seed, 2]))
    rng = np.random.default_rng([seed, 1])
    groups = partition_columns([c for c in columns if c not in set(own)], parties, partition, rng)
    if not features.index.is_unique:
        raise UserError("the table's sample ids are not unique")
    return build_vertical(name, [features[g] for g in groups], target, task, seed, test_fraction,
                          features[own] if own else None)


def label_party_columns(columns: Sequence[str], count: int, parties: int, how: str,
                        rng: np.random.Generator) -> list[str]:
    """The `count` columns the label party keeps: the last ones (contiguous) or a seeded random draw."""
    check(count >= 0, f"--label-party-features must be >= 0, got {count}")
    if count == 0:
        return []
    check(count <= len(columns) - parties,
          f"--label-party-features {count} leaves {len(columns) - count} of {len(columns)} feature columns for "
          f"{parties} feature parties; use --label-party-features <= {len(columns) - parties}")
    if how == "contiguous":
        return list(columns[len(columns) - count:])
    return [columns[i] for i in np.sort(rng.choice(len(columns), count, replace=False))]
