"""The vertical view of a table: aligned sample ids, one feature block per feature party, labels, split."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from fedsim.errors import FedsimWarning, UserError, check
from fedsim.streams import Stream

TASKS = ("regression", "binary", "multiclass")
CLASSIFICATION = ("binary", "multiclass")
PARTITIONS = ("contiguous", "random")
IMPUTE = ("mean", "median", "drop")
SCAN_CHUNK = 1 << 20


class MissingValuesWarning(FedsimWarning):
    """Feature values were missing or infinite and were replaced or their rows dropped (`--impute`)."""


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
    missing_values: dict[str, int] = field(default_factory=dict)  # column -> missing or infinite values found
    missing_rows_dropped: int = 0  # rows dropped for them (--impute drop)

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
    values = _two_values(target)  # the distinct values if there are at most two (a full unique() is costly)
    if task is None:
        task = "binary" if len(values) == 2 else ("regression" if numeric or len(values) < 2 else "multiclass")
    if task == "regression":
        check(numeric, f"target column {target.name!r} is not numeric; a regression target must be numbers "
                       f"(or use --task multiclass for classes)")
        y = target.to_numpy(dtype=np.float64)
        check(bool(np.isfinite(y).all()), f"target column {target.name!r} has infinite labels")
        check(len(values) >= 2, f"target column {target.name!r} holds the same value ({y[0]:g}) in every row: "
                                "there is nothing to learn or to infer; choose the label column with --target")
        return y, task, []
    if task == "multiclass":
        classes = target.unique()
        check(numeric or len(target) <= 2 or len(classes) < len(target),
              f"target column {target.name!r} has a different value on every row ({len(target)} rows): it looks "
              f"like an id or free text, not a label; choose the label column with --target")
        return _encode_classes(target, classes, numeric)
    distinct = len(target.unique()) if len(values) != 2 else 2
    check(len(values) == 2, f"a binary target needs exactly two distinct values; {target.name!r} has "
                            f"{distinct}" + (_task_hint(target, numeric) if distinct > 2 else ""))
    if numeric and set(np.asarray(values, dtype=np.float64)) <= {0.0, 1.0}:
        return target.to_numpy(dtype=np.float64), task, ["0", "1"]
    names = sorted(map(str, values))  # the larger value (in string order) is the positive class
    return (target.astype(str) == names[1]).to_numpy(dtype=np.float64), task, names


def _task_hint(target: pd.Series, numeric: bool) -> str:
    """What a target with more than two values is: numbers with fractions -> regression, whole numbers ->
    either, text -> multiclass."""
    if not numeric:
        return "; use --task multiclass"
    numbers = target.to_numpy(dtype=np.float64)
    if not bool(np.all(numbers == np.round(numbers))):
        return "; it holds continuous values: use --task regression"
    return "; use --task regression (a quantity) or --task multiclass (class numbers)"


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


def _column_stats(train_values: np.ndarray, impute: str) -> tuple[float, float, float]:
    """Mean and std (float64) of a numeric column's finite training values ((0, 1) when there are none), and
    the standardised value that replaces a missing or infinite one: 0 (the training mean) or the training
    median's."""
    finite = np.isfinite(train_values)
    if not finite.any():
        return 0.0, 1.0, 0.0
    kept = train_values if finite.all() else train_values[finite]
    mean, std = float(kept.mean()), float(kept.std()) or 1.0
    fill = (float(np.median(kept)) - mean) / std if impute == "median" and not finite.all() else 0.0
    return mean, std, fill


def _write_standardised(values: np.ndarray, rows: np.ndarray, mean: float, std: float, fill: float,
                        out: np.ndarray) -> None:
    """`out[i] = (values[rows[i]] - mean) / std` in float64 maths, missing or infinite values -> `fill`;
    in chunks, so no float64 copy of a 10M-row column is held."""
    for start in range(0, len(rows), SCAN_CHUNK):
        part = values[rows[start : start + SCAN_CHUNK]].astype(np.float64)
        out[start : start + len(part)] = np.where(np.isfinite(part), (part - mean) / std, fill)


def missing_cells(table: pd.DataFrame, columns: Sequence[str]) -> dict[str, np.ndarray]:
    """Per column with any, the mask of rows whose value is missing (NaN, None, empty) or, for a numeric column,
    infinite."""
    out = {}
    for column in columns:
        values = table[column]
        if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            mask = ~np.isfinite(values.to_numpy(dtype=np.float64))
        else:
            mask = values.isna().to_numpy()
        if mask.any():
            out[str(column)] = mask
    return out


def _missing_summary(counts: dict[str, int]) -> str:
    shown = ", ".join(f"{column} ({n})" for column, n in sorted(counts.items(), key=lambda kv: -kv[1])[:5])
    more = f" and {len(counts) - 5} more" if len(counts) > 5 else ""
    return f"{sum(counts.values())} missing or infinite feature values in {len(counts)} columns: {shown}{more}"


def missing_values_message(counts: dict[str, int], impute: str, rows_dropped: int) -> str:
    """One line: how many values were missing or infinite, in which columns, and what was done about them."""
    done = (f"dropped {rows_dropped} rows" if impute == "drop" else
            f"numeric ones replaced by the column's training {impute}, categorical ones kept as their own category")
    return f"{_missing_summary(counts)}; {done} (--impute {'|'.join(IMPUTE)})"


def refuse_missing(counts: dict[str, int], impute: str | None) -> None:
    """Without `--impute`, missing or infinite feature values are an error naming the columns: nothing is
    fixed up silently."""
    check(impute is not None or not counts,
          f"{_missing_summary(counts)}; clean the data, or choose --impute mean|median (the column's training "
          f"mean or median; a missing category becomes its own) or --impute drop (drop the rows)")


def _category_names(values: pd.Series) -> pd.Series:
    """A categorical column's values as strings, a missing value as the category "nan" (pandas' string dtype
    would otherwise keep it missing, not a category)."""
    return values.astype(object).where(values.notna(), "nan").astype(str)


def encode_block(table: pd.DataFrame, source_columns: list[str], train_idx: np.ndarray,
                 test_idx: np.ndarray, impute: str | None = None) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Standardise numeric columns and one-hot encode the others, fitting only on the training rows; a missing
    or infinite numeric value becomes the column's training mean or median (`impute`), a missing category its
    own category.

    Each encoded column is written straight into the block's contiguous float32 arrays, so a 10M-row table
    never holds a float64 copy of the whole block (only of one column at a time)."""
    categories: dict[str, list[str] | None] = {}
    for column in source_columns:
        values = table[column]
        numeric = pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values)
        categories[column] = None if numeric else sorted(_category_names(values.iloc[train_idx]).unique())
    names = [str(c) if cats is None else f"{c}={cat}" for c, cats in categories.items() for cat in (cats or [None])]
    train = np.empty((len(train_idx), len(names)), dtype=np.float32)
    test = np.empty((len(test_idx), len(names)), dtype=np.float32)
    j = 0
    for column, cats in categories.items():
        values = table[column]
        if cats is None:
            values = values.to_numpy(dtype=np.float64 if pd.api.types.is_bool_dtype(values) else None)
            mean, std, fill = _column_stats(values[train_idx].astype(np.float64), impute or "mean")
            _write_standardised(values, train_idx, mean, std, fill, train[:, j])
            _write_standardised(values, test_idx, mean, std, fill, test[:, j])
            j += 1
            continue
        s_train, s_test = _category_names(values.iloc[train_idx]), _category_names(values.iloc[test_idx])
        for category in cats:
            train[:, j], test[:, j] = (s_train == category).to_numpy(), (s_test == category).to_numpy()
            j += 1
    return names, train, test


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
    party_columns: Sequence[Sequence[str]] | None = None,
    release_source: bool = False,
    label_table: pd.DataFrame | None = None,
    label_columns: Sequence[str] | None = None,
    impute: str | None = None,
) -> VerticalDataset:
    """Align per-party tables (indexed by sample id, any order) with the labels and encode each block.

    `party_columns[k]` picks party k's columns of `party_tables[k]` (default: all of them), so parties can
    share one table without copying it. With `release_source`, each source column is deleted from its table
    as soon as it is encoded (for tables the caller no longer needs: a 10M-row table then never exists in
    both its raw and its encoded form). `label_table` (its `label_columns`, default all) holds the label
    party's own feature columns, indexed like `labels` (same party, same ids). Missing or infinite feature
    values are refused (`impute` None) or counted, warned about (`MissingValuesWarning`) and imputed or
    dropped as `impute` says."""
    check(label_table is None or label_table.index.equals(labels.index),
          "the label party's feature table must list the same sample ids as its labels")
    common, dropped, dropped_by_party = align_parties(labels.index, [t.index for t in party_tables])
    shared = all(t.index.equals(common) for t in party_tables) and labels.index.equals(common)
    if not shared:  # reorder every table to the common ids (a one-table split already shares them)
        labels, party_tables = labels.loc[common], [t.loc[common] for t in party_tables]
        label_table = label_table.loc[common] if label_table is not None else None
    check(impute is None or impute in IMPUTE, f"--impute {impute!r} is not one of: {', '.join(IMPUTE)}")
    y, task, classes = encode_target(labels, task)
    sources = list(zip(party_tables, party_columns or [t.columns for t in party_tables], strict=True))
    if label_table is not None:
        sources.append((label_table, label_columns if label_columns is not None else list(label_table.columns)))
    missing = [missing_cells(table, columns) for table, columns in sources]
    counts = {column: int(mask.sum()) for cells in missing for column, mask in cells.items()}
    refuse_missing(counts, impute)
    kept = np.arange(len(common))
    if impute == "drop" and counts:
        kept = np.flatnonzero(~np.logical_or.reduce([mask for cells in missing for mask in cells.values()]))
        check(len(kept) >= 2, f"--impute drop leaves {len(kept)} of {len(common)} rows (every other row has a "
                              f"missing or infinite feature value); use --impute mean or median")
    if counts and impute is not None:
        warnings.warn(MissingValuesWarning(missing_values_message(counts, impute, len(common) - len(kept))),
                      stacklevel=2)
    train_pos, test_pos = split_indices(len(kept), y[kept], task, test_fraction, seed)
    train_idx, test_idx = kept[train_pos], kept[test_pos]
    if task in CLASSIFICATION:
        check_train_classes(y[train_idx], y[test_idx], classes)

    def encode(table: pd.DataFrame, source_columns: Sequence[str]) -> FeatureBlock:
        columns, train, test = encode_block(table, list(source_columns), train_idx, test_idx, impute)
        if release_source:
            for column in source_columns:
                del table[column]
        return FeatureBlock(list(map(str, source_columns)), columns, train, test)

    blocks = [encode(table, cols) for table, cols in sources[:len(party_tables)]]
    label_block = encode(*sources[-1]) if label_table is not None else None
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
        label_block=label_block,
        missing_values=counts,
        missing_rows_dropped=len(common) - len(kept),
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
    label_party_features: int = 0,
    impute: str | None = None,
) -> VerticalDataset:
    """Partition one table's columns over `parties` feature parties (all parties hold every id);
    `release_source` as in `build_vertical`.

    With `label_party_features` N > 0 the label party first keeps N columns for its own bottom model: the last
    N columns (contiguous) or N drawn at random (random, seeded); the feature parties split the rest.
    """
    _, task = validate_target(target, task)  # label errors first: they are the likelier mistake
    columns = list(features.columns)
    own_rng = np.random.default_rng([seed, Stream.LABEL_PARTY_COLUMNS])
    own = label_party_columns(columns, label_party_features, parties, partition, own_rng)
    rng = np.random.default_rng([seed, Stream.COLUMN_PARTITION])
    groups = partition_columns([c for c in columns if c not in set(own)], parties, partition, rng)
    if not features.index.is_unique:
        raise UserError("the table's sample ids are not unique")
    return build_vertical(name, [features] * parties, target, task, seed, test_fraction, groups, release_source,
                          features if own else None, own or None, impute)


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
