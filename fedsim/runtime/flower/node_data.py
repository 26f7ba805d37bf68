"""A feature party's own data on its node: its train feature block and the train row ids, cached on disk.

A deployed SuperNode starts one ClientApp process per message, so an in-process cache lives for one message
only, and rebuilding the vertical dataset each time (reading and encoding the whole table, importing
pandas/scikit-learn) cost about a second per message. The first message of a run (setup) builds the dataset
once and saves this party's block as `.npy` files in a node-local cache folder; every later message of the
run memory-maps them (milliseconds, and only the pages of the rows a batch touches are read).

The folder is the node config's `cache-dir` if set (`flower-supernode --node-config 'cache-dir=/path'`), else
a per-user folder in the temporary directory; it is created private (mode 0700), since it holds the party's
features. An entry belongs to one run: it is keyed by a hash of the Flower run id, the whole run config and
the party index, so no run ever reads a block built by another run (another config, data file or fedsim
version). Only the `KEEP_ENTRIES` most recent entries are kept; a message that finds its entry gone rebuilds it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from fedsim.config import TrainConfig
from fedsim.errors import check

CACHE_DIR_KEY = "cache-dir"
KEEP_ENTRIES = 8
FEATURES, TRAIN_IDS, TEST_FEATURES = "features.npy", "train_ids.npy", "test_features.npy"


@dataclass(frozen=True)
class NodeData:
    """What a feature party needs of the dataset: its train block (float32, n_train x d) and the row ids;
    with per-party files also its test block (it embeds the test rows itself)."""

    features: np.ndarray
    train_ids: np.ndarray
    test_features: np.ndarray | None = None


def default_cache_dir() -> Path:
    return Path(tempfile.gettempdir()) / f"fedsim-node-cache-{os.getuid()}"


def entry_key(run_id: int, config_json: str, index: int) -> str:
    return hashlib.sha256(f"{run_id}\n{config_json}\n{index}".encode()).hexdigest()[:32]


@lru_cache(maxsize=4)  # a persistent process (a simulation actor) also skips the disk
def node_data(run_id: int, config_json: str, index: int, cache_dir: str) -> NodeData:
    """Party `index`'s data in run `run_id`: memory-mapped from the cache, else built and saved there."""
    folder = Path(cache_dir) / entry_key(run_id, config_json, index)
    try:  # copy-on-write mapping: torch gets a writable array, the file is never changed
        return NodeData(np.load(folder / FEATURES, mmap_mode="c"), np.load(folder / TRAIN_IDS))
    except (FileNotFoundError, ValueError):  # ValueError: a truncated file from a crashed writer
        pass
    from fedsim.assembly import load_dataset  # pandas and the table readers: only on a cache miss

    dataset = load_dataset(TrainConfig.model_validate_json(config_json))
    data = NodeData(np.ascontiguousarray(dataset.blocks[index].train, dtype=np.float32), dataset.train_ids)
    save(data, folder)
    return data


def own_file_data(run_id: int, config_json: str, index: int, cache_dir: str, own_file: tuple[str, str | None],
                  train_ids: np.ndarray, test_ids: np.ndarray, impute: str = "mean") -> NodeData:
    """Per-party files: party `index`'s block from its own file (`own_file`: path, id column), rows in the
    order of the label party's train and test ids, encoded on the training rows; cached like `node_data`."""
    folder = Path(cache_dir) / entry_key(run_id, f"{config_json}\n{own_file}", index)
    try:
        return NodeData(np.load(folder / FEATURES, mmap_mode="c"), np.load(folder / TRAIN_IDS),
                        np.load(folder / TEST_FEATURES, mmap_mode="c"))
    except (FileNotFoundError, ValueError):
        pass
    from fedsim.data.party_files import encode_rows, read_party_file

    table = read_party_file(*own_file)
    check(table.shape[1] > 0, f"data file {own_file[0]!r} has no feature columns besides the id column")
    block = encode_rows(table, list(table.columns), train_ids, test_ids, impute)
    data = NodeData(block.train, np.asarray(train_ids), block.test)
    save(data, folder)
    return data


def save(data: NodeData, folder: Path) -> None:
    """Write the entry into a private temporary folder and rename it into place (readers never see half of it)."""
    folder.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    np.save(partial / FEATURES, data.features)
    np.save(partial / TRAIN_IDS, data.train_ids)
    if data.test_features is not None:
        np.save(partial / TEST_FEATURES, data.test_features)
    shutil.rmtree(folder, ignore_errors=True)  # a damaged entry
    try:
        partial.rename(folder)
    except OSError:  # another process saved the same entry first
        shutil.rmtree(partial, ignore_errors=True)
    entries = sorted((p for p in folder.parent.iterdir() if not p.name.startswith(".")), key=_mtime, reverse=True)
    for old in entries[KEEP_ENTRIES:]:
        shutil.rmtree(old, ignore_errors=True)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:  # removed by another node's clean-up meanwhile
        return 0.0
