"""`flwr run .` over a loopback deployment with per-party files (issue 22): three separate files, only the
label party's holds the target, ids aligned by PSI; the result equals the local run on the joined table, each
feature party's transcript stays on its node and `fedsim attack` runs on it with the labels it knows.
Slow: each deployed message starts a ClientApp process."""

from __future__ import annotations

import json
import stat
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from flower_deployment import deployment, flower_env, flwr_run
from test_flower_party_files import OWN, settings, three_files

from fedsim.config import TrainConfig
from fedsim.training import train

pytestmark = pytest.mark.slow
pytest.importorskip("private_set_intersection")


def test_flwr_run_deploy_three_party_files_psi_trains_like_local_on_the_joined_table(tmp_path):
    joined, label, features = three_files(tmp_path)
    values = settings(epochs=1, batch_size=128)  # 2 steps: each deployed message starts a process
    local = train(TrainConfig(data=str(tmp_path / "joined.csv"), target="y", id_column="id",
                              label_party_features=len(OWN), **values))
    nodes = {k: f"data='{path}' id-column='id' transcript-dir='{tmp_path / f'node{k}'}'"
             for k, path in enumerate(features)}
    model = values["model"]
    result_file = tmp_path / "result.json"
    with flower_env(tmp_path) as env, deployment(env, 2, tmp_path, node_configs=nodes):
        flwr_run(env, "deploy", f"party-files=true data='{label}' target='y' id-column='id' dataset='' "
                                f"epochs=1 batch-size=128 seed=3 embedding-dim={model.embedding_dim} "
                                f"hidden={model.bottom_hidden} timeout=120.0 result='{result_file}'", timeout=1200)
        result = json.loads(result_file.read_text())
    assert "error" not in result, result
    assert stat.S_IMODE(result_file.stat().st_mode) == 0o600
    for key, value in local.metrics.items():
        assert result["test"][key] == pytest.approx(value, abs=1e-5)
    run = next((tmp_path / "node0").iterdir())
    trained = np.load(run / "party_0" / "sample_ids.npy")[:20]
    known = pd.read_csv(label).set_index("id").loc[trained, "y"].rename("label").reset_index()
    known.to_csv(tmp_path / "known.csv", index=False)
    attack = subprocess.run([sys.executable, "-m", "fedsim", "attack", "--transcript", str(run), "--party", "0",
                             "--known-labels", str(tmp_path / "known.csv"), "--attack", "norm_scoring", "--json",
                             "--quiet"],
                            capture_output=True, text=True, check=False)
    assert attack.returncode == 0, attack.stderr
    assert set(np.load(run / "party_0" / "sample_ids.npy")) <= set(joined["id"])
