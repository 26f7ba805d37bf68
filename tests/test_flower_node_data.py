"""The deployed feature party's node-local data cache, and the ClientApp module's light imports."""

from __future__ import annotations

import stat
import subprocess
import sys

import numpy as np
from fedsim_fixtures import small_config

from fedsim.assembly import load_dataset
from fedsim.runtime.flower import node_data as nd

RUN = 7


def load(config, index, cache, run=RUN) -> nd.NodeData:
    return nd.node_data.__wrapped__(run, config.model_dump_json(), index, str(cache))  # past the process cache


def test_cache_miss_builds_the_block_then_hits_memory_map_equal_arrays(tmp_path):
    config = small_config()
    dataset = load_dataset(config)
    first, again = load(config, 1, tmp_path), load(config, 1, tmp_path)
    assert not isinstance(first.features, np.memmap) and isinstance(again.features, np.memmap)
    for data in (first, again):
        np.testing.assert_array_equal(data.features, dataset.blocks[1].train)
        np.testing.assert_array_equal(data.train_ids, dataset.train_ids)
        assert data.features.dtype == np.float32 and data.features.flags.writeable  # torch.from_numpy: no warning


def test_cache_dir_is_private(tmp_path):
    load(small_config(), 0, tmp_path / "cache")
    assert stat.S_IMODE((tmp_path / "cache").stat().st_mode) == 0o700


def test_entry_belongs_to_one_run_config_and_party():
    config = small_config().model_dump_json()
    keys = {nd.entry_key(RUN, config, 0), nd.entry_key(RUN, config, 1), nd.entry_key(RUN + 1, config, 0),
            nd.entry_key(RUN, small_config(seed=1).model_dump_json(), 0)}
    assert len(keys) == 4


def test_truncated_entry_is_rebuilt(tmp_path):
    config = small_config()
    load(config, 0, tmp_path)
    (tmp_path / nd.entry_key(RUN, config.model_dump_json(), 0) / nd.FEATURES).write_bytes(b"\x93NUMPY")
    np.testing.assert_array_equal(load(config, 0, tmp_path).features, load_dataset(config).blocks[0].train)


def test_only_the_most_recent_entries_are_kept(tmp_path):
    config = small_config(rows=100)
    for run in range(nd.KEEP_ENTRIES + 3):
        load(config, 0, tmp_path, run)
    entries = list(tmp_path.iterdir())
    assert len(entries) == nd.KEEP_ENTRIES and not any(p.name.startswith(".") for p in entries)
    assert (tmp_path / nd.entry_key(nd.KEEP_ENTRIES + 2, config.model_dump_json(), 0)).is_dir()


def test_client_app_module_does_not_import_the_table_readers_or_the_server_side():
    """A deployed node imports the ClientApp anew for every message: no pandas, scikit-learn or ServerApp."""
    code = ("import sys; from fedsim.runtime.flower.apps import client_app; "
            "print(' '.join(m for m in ('pandas', 'sklearn', 'fedsim.assembly', 'fedsim.runtime.flower.server', "
            "'fedsim.runtime.flower.simulation', 'ray') if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert loaded == []
