"""The deployed feature party's node-local data cache, and the ClientApp module's light imports."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time

import numpy as np
import pytest
from fedsim_fixtures import small_config

from fedsim.assembly import feature_setup, load_dataset
from fedsim.runtime.flower import node_data as nd

RUN = 7


def setup_json(config, index: int) -> str:
    return feature_setup(config, load_dataset(config), index).model_dump_json()


def stored(config, index, cache, run=RUN) -> str:
    """Save party `index`'s block as its setup message would; returns the setup JSON (the entry's key)."""
    dataset = load_dataset(config)
    key = setup_json(config, index)
    nd.store(run, key, nd.NodeData(dataset.blocks[index].train, dataset.train_ids), str(cache))
    return key


def load(key: str, cache, run=RUN) -> nd.NodeData:
    return nd._load.__wrapped__(cache / nd.entry_key(run, key), run, str(cache))  # past the process cache


def test_the_stored_block_is_memory_mapped_back_equal(tmp_path):
    config = small_config()
    dataset = load_dataset(config)
    data = load(stored(config, 1, tmp_path), tmp_path)
    assert isinstance(data.features, np.memmap)
    np.testing.assert_array_equal(data.features, dataset.blocks[1].train)
    np.testing.assert_array_equal(data.train_ids, dataset.train_ids)
    assert data.features.dtype == np.float32 and data.features.flags.writeable  # torch.from_numpy: no warning


def test_cache_dir_is_private(tmp_path):
    stored(small_config(), 0, tmp_path / "cache")
    assert stat.S_IMODE((tmp_path / "cache").stat().st_mode) == 0o700


def test_entry_belongs_to_one_run_and_party_setup():
    config = small_config()
    keys = {nd.entry_key(RUN, setup_json(config, 0)), nd.entry_key(RUN, setup_json(config, 1)),
            nd.entry_key(RUN + 1, setup_json(config, 0)), nd.entry_key(RUN, setup_json(small_config(seed=1), 0))}
    assert len(keys) == 4


def test_a_missing_or_truncated_entry_fails_with_one_line(tmp_path):
    config = small_config()
    key = stored(config, 0, tmp_path)
    (tmp_path / nd.entry_key(RUN, key) / nd.FEATURES).write_bytes(b"\x93NUMPY")
    with pytest.raises(RuntimeError, match="missing or damaged"):
        load(key, tmp_path)
    with pytest.raises(RuntimeError, match="missing or damaged"):
        load(key, tmp_path, run=RUN + 1)


def test_idle_entries_are_removed_and_live_ones_kept(tmp_path):
    """However many entries a node holds, one in use stays; one idle past IDLE_S goes at the next setup."""
    config = small_config(rows=100)
    keys = [stored(config, 0, tmp_path, run) for run in range(12)]
    idle = time.time() - nd.IDLE_S - 60
    for run in (0, 1):
        os.utime(tmp_path / nd.entry_key(run, keys[run]), (idle, idle))
    nd.node_data(1, keys[1], str(tmp_path))  # a message of run 1: its entry is in use again
    stored(config, 0, tmp_path, 12)
    assert not (tmp_path / nd.entry_key(0, keys[0])).exists()
    assert len(list(tmp_path.iterdir())) == 12 and not any(p.name.startswith(".") for p in tmp_path.iterdir())


def test_client_app_module_does_not_import_the_table_readers_or_the_server_side():
    """A deployed node imports the ClientApp anew for every message: no pandas, scikit-learn or ServerApp."""
    code = ("import sys; from fedsim.runtime.flower.apps import client_app; "
            "print(' '.join(m for m in ('pandas', 'sklearn', 'fedsim.assembly', 'fedsim.runtime.flower.server', "
            "'fedsim.runtime.flower.simulation', 'ray') if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert loaded == []
