"""A feature party's own data on its node: its train feature block and the train row ids, cached on disk.

The label party sends them once, in the setup message (fedsim.runtime.flower.client.setup), with the party's
`FeaturePartySetup`: the node needs neither the table nor the run's seed or settings. With per-party files the
node encodes its own file instead, on the ids of the label party's split message, and stores the block (test
rows included) the same way. A deployed SuperNode
starts one ClientApp process per message, so an in-process copy lives for one message only: the setup
handler saves the block as `.npy` files in a node-local cache folder, and every later message of the run
memory-maps them (milliseconds, and only the pages of the rows a batch touches are read).

The folder is the node config's `cache-dir` if set (`flower-supernode --node-config 'cache-dir=/path'`), else
a per-user folder in the temporary directory; it is created private (mode 0700), since it holds the party's
features. An entry belongs to one run: it is keyed by a hash of the Flower run id and the party's setup, so
no run ever reads a block saved by another run. Every message touches its entry; entries idle for over
`IDLE_S` are removed when a setup saves a new one (a live run is never evicted, however many share the
node). A message whose entry is gone (removed by hand, or a damaged file) fails with a line saying so.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from fedsim.errors import check

CACHE_DIR_KEY = "cache-dir"
IDLE_S = 24 * 3600.0  # an entry unused this long belongs to a finished run
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


def entry_key(run_id: int, setup_json: str) -> str:
    return hashlib.sha256(f"{run_id}\n{setup_json}".encode()).hexdigest()[:32]


def store(run_id: int, setup_json: str, data: NodeData, cache_dir: str) -> None:
    """Save the party's block (float32 features, int64 ids; with per-party files its test block too) for the
    run's later messages."""
    test = None if data.test_features is None else np.ascontiguousarray(data.test_features, dtype=np.float32)
    data = NodeData(np.ascontiguousarray(data.features, dtype=np.float32), np.asarray(data.train_ids, dtype=np.int64),
                    test)
    save(data, Path(cache_dir) / entry_key(run_id, setup_json))
    _load.cache_clear()  # a process that set up this run before holds no stale copy


def node_data(run_id: int, setup_json: str, cache_dir: str) -> NodeData:
    """This party's data in run `run_id`, memory-mapped from the cache where its setup saved it; marks the
    entry as in use."""
    folder = Path(cache_dir) / entry_key(run_id, setup_json)
    with contextlib.suppress(FileNotFoundError):
        os.utime(folder)
    return _load(folder, run_id, cache_dir)


@lru_cache(maxsize=4)  # a persistent process (a simulation actor) also skips the disk
def _load(folder: Path, run_id: int, cache_dir: str) -> NodeData:
    try:  # copy-on-write mapping: torch gets a writable array, the file is never changed
        test = folder / TEST_FEATURES
        return NodeData(np.load(folder / FEATURES, mmap_mode="c"), np.load(folder / TRAIN_IDS),
                        np.load(test, mmap_mode="c") if test.exists() else None)
    except (FileNotFoundError, ValueError):  # ValueError: a truncated file from a crashed writer
        raise RuntimeError(f"this node's data of run {run_id} is missing or damaged in {cache_dir} ("
                           f"{IDLE_S / 3600:g} h idle, or removed?); run again") from None


def own_file_data(own_file: tuple[str, str | None], train_ids: np.ndarray, test_ids: np.ndarray,
                  impute: str | None = None) -> NodeData:
    """Per-party files: the party's block from its own file (`own_file`: path, id column), rows in the order
    of the label party's train and test ids, encoded on the training rows (the split message stores it)."""
    from fedsim.data.party_files import encode_rows, read_party_file  # pandas: only in the split message

    table = read_party_file(*own_file)
    check(table.shape[1] > 0, f"data file {own_file[0]!r} has no feature columns besides the id column")
    block = encode_rows(table, list(table.columns), train_ids, test_ids, impute)
    return NodeData(block.train, np.asarray(train_ids), block.test)


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
    now = time.time()
    for old in [p for p in folder.parent.iterdir() if not p.name.startswith(".") and now - _mtime(p) > IDLE_S]:
        shutil.rmtree(old, ignore_errors=True)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:  # removed by another node's clean-up meanwhile
        return 0.0
