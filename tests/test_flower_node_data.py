"""The deployed feature party's node-local data cache, and the ClientApp module's light imports."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import numpy as np

from fedsim.assembly import load_dataset
from fedsim.runtime.flower import node_data as nd
from tests.conftest import small_config


def test_cache_miss_builds_the_block_then_hits_memory_map_equal_arrays(tmp_path):
    config = small_config()
    dataset = load_dataset(config)
    first = nd.node_data.__wrapped__(config.model_dump_json(), 1, str(tmp_path))
    again = nd.node_data.__wrapped__(config.model_dump_json(), 1, str(tmp_path))
    assert not isinstance(first.features, np.memmap) and isinstance(again.features, np.memmap)
    for data in (first, again):
        np.testing.assert_array_equal(data.features, dataset.blocks[1].train)
        np.testing.assert_array_equal(data.train_ids, dataset.train_ids)
        assert data.features.dtype == np.float32


def test_cache_dir_is_private(tmp_path):
    cache = tmp_path / "cache"
    nd.node_data.__wrapped__(small_config().model_dump_json(), 0, str(cache))
    assert stat.S_IMODE(cache.stat().st_mode) == 0o700


def test_key_changes_with_config_party_and_data_file(tmp_path):
    config = small_config()
    keys = {nd.entry_key(config, 0), nd.entry_key(config, 1), nd.entry_key(small_config(seed=1), 0)}
    assert len(keys) == 3
    table = tmp_path / "t.csv"
    table.write_text("a,b,y\n1,2,3\n")
    with_file = small_config(dataset=None, data=str(table), target="y")
    before = nd.entry_key(with_file, 0)
    table.write_text("a,b,y\n1,2,3\n4,5,6\n")
    os.utime(table, ns=(1, 1))
    assert nd.entry_key(with_file, 0) != before


def test_truncated_entry_is_rebuilt(tmp_path):
    config = small_config()
    nd.node_data.__wrapped__(config.model_dump_json(), 0, str(tmp_path))
    (tmp_path / nd.entry_key(config, 0) / nd.FEATURES).write_bytes(b"\x93NUMPY")
    data = nd.node_data.__wrapped__(config.model_dump_json(), 0, str(tmp_path))
    np.testing.assert_array_equal(data.features, load_dataset(config).blocks[0].train)


def test_only_the_most_recent_entries_are_kept(tmp_path):
    for seed in range(nd.KEEP_ENTRIES + 3):
        nd.node_data.__wrapped__(small_config(seed=seed, rows=100).model_dump_json(), 0, str(tmp_path))
    entries = list(tmp_path.iterdir())
    assert len(entries) == nd.KEEP_ENTRIES and not any(p.name.startswith(".") for p in entries)
    assert (tmp_path / nd.entry_key(small_config(seed=nd.KEEP_ENTRIES + 2, rows=100), 0)).is_dir()


def test_client_app_module_does_not_import_the_table_readers_or_the_server_side():
    """A deployed node imports the ClientApp anew for every message: no pandas, scikit-learn or ServerApp."""
    code = ("import sys; from fedsim.runtime.flower.apps import client_app; "
            "print(' '.join(m for m in ('pandas', 'sklearn', 'fedsim.assembly', 'fedsim.runtime.flower.server', "
            "'fedsim.runtime.flower.simulation', 'ray') if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert loaded == []
