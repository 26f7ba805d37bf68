"""Per-party files of a deployment: each party reads its own file only, indexed by its own id column.

A feature party's file holds an id column and its feature columns; the label party's file holds an id
column, the target and optionally its own feature columns. The ids are aligned privately
(`fedsim.deploy.psi`), the label party draws the train/test split over the intersection and sends each party
the ids of its training and test rows; each party then encodes its own columns on its own training rows
(`encode_rows`), exactly as the one-table runtime encodes the same columns.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from fedsim.data.files import DEFAULT_ID_COLUMN, read_frame
from fedsim.data.vertical import (
    CLASSIFICATION,
    FeatureBlock,
    VerticalDataset,
    check_train_classes,
    encode_block,
    encode_target,
    missing_cells,
    refuse_missing,
    split_indices,
)
from fedsim.errors import check

SPLITS = ("stratified", "unstratified")


def read_party_file(path: str | Path, id_column: str | None) -> pd.DataFrame:
    """A party's own table indexed by its integer sample ids; one-line errors for a missing id column,
    duplicate or non-integer ids."""
    table = read_frame(path)
    id_column = id_column or DEFAULT_ID_COLUMN
    check(id_column in table.columns, f"id column {id_column!r} is not in {str(path)!r}; columns: "
                                      f"{', '.join(map(str, table.columns))} (set id-column= in the node config)")
    ids = table[id_column]
    check(pd.api.types.is_integer_dtype(ids), f"id column {id_column!r} of {str(path)!r} must hold integer ids")
    duplicated = ids[ids.duplicated()]
    check(duplicated.empty, f"id column {id_column!r} of {str(path)!r} has duplicate ids (first: "
                            f"{duplicated.iloc[0] if not duplicated.empty else ''})")
    return table.set_index(id_column)


def encode_rows(table: pd.DataFrame, columns: list[str], train_ids: np.ndarray,
                test_ids: np.ndarray, impute: str | None = None) -> FeatureBlock:
    """Encode `columns` of the party's table for the given training and test ids (fitted on training rows;
    missing values refused, or imputed by `impute`, mean or median: `fedsim.data.vertical.encode_block`)."""
    check(bool(np.isin(train_ids, table.index).all() and np.isin(test_ids, table.index).all()),
          "the label party sent an id this party does not hold")
    rows = table.loc[np.concatenate([train_ids, test_ids]), columns]
    refuse_missing({column: int(mask.sum()) for column, mask in missing_cells(rows, columns).items()}, impute)
    n_train = len(train_ids)
    names, train, test = encode_block(rows, columns, np.arange(n_train), np.arange(n_train, len(rows)), impute)
    return FeatureBlock(list(map(str, columns)), names, train, test)


def read_label_file(path: str | Path, target: str | None, id_column: str | None) -> tuple[pd.Series, pd.DataFrame]:
    """The label party's labels and its own feature columns (possibly none), indexed by its sample ids."""
    check(target is not None, "the label party's file needs target= (its label column)")
    table = read_party_file(path, id_column)
    check(target in table.columns, f"target column {target!r} is not in {str(path)!r}; columns: "
                                   f"{', '.join(map(str, table.columns))}")
    return table[target], table.drop(columns=[target])


def label_party_dataset(name: str, labels: pd.Series, own: pd.DataFrame, common: np.ndarray,
                        task: str | None, seed: int, test_fraction: float, split: str,
                        impute: str | None = None) -> VerticalDataset:
    """The label party's view of an aligned per-party dataset: the labels and its own block over the ids at
    positions `common` of its file, split `split` (stratified on the labels, or on the seed alone). The feature
    parties' blocks are added by `width_block` once they report their widths."""
    check(split in SPLITS, f"split {split!r} is not one of: {', '.join(SPLITS)}")
    check(len(common) > 0, "no sample id is held by every party: the intersection of the parties' ids is empty")
    ids = labels.index.to_numpy()[common]
    y, task, classes = encode_target(labels.iloc[common], task)
    train_idx, test_idx = split_indices(len(ids), y, task if split == "stratified" else "regression",
                                        test_fraction, seed)
    if task in CLASSIFICATION:
        check_train_classes(y[train_idx], y[test_idx], classes)
    label_block = None
    if own.shape[1]:
        label_block = encode_rows(own, list(own.columns), ids[train_idx], ids[test_idx], impute)
    return VerticalDataset(name=name, task=task, train_ids=ids[train_idx], test_ids=ids[test_idx], blocks=[],
                           y_train=y[train_idx], y_test=y[test_idx], dropped_ids=len(labels) - len(ids),
                           classes=classes, label_block=label_block)


def width_block(party: int, width: int) -> FeatureBlock:
    """Feature party `party`'s block as the label party knows it: its width, no rows."""
    empty = np.zeros((0, width), np.float32)
    return FeatureBlock([], [f"party_{party}[{j}]" for j in range(width)], empty, empty.copy())
