"""Datasets: built-in tables, user files, and their vertical (per-party) view."""

from fedsim.data.files import read_table
from fedsim.data.sources import DATASETS, DatasetSpec, load_table
from fedsim.data.vertical import (
    FeatureBlock,
    VerticalDataset,
    align_parties,
    build_vertical,
    encode_target,
    partition_columns,
    validate_target,
    vertical_from_table,
)

__all__ = [
    "DATASETS",
    "DatasetSpec",
    "FeatureBlock",
    "VerticalDataset",
    "align_parties",
    "build_vertical",
    "encode_target",
    "load_table",
    "partition_columns",
    "read_table",
    "validate_target",
    "vertical_from_table",
]
