"""A loopback deployment whose SuperNodes run their ClientApp tasks with fedsim's `warm_superexec` (forked
from a pre-imported process) trains exactly like the local runtime and like Flower's own SuperExec. Slow."""

from __future__ import annotations

import json

import pytest

from fedsim.config import TrainConfig
from fedsim.rundir import load_party_view
from fedsim.runtime.flower.warm_superexec import FORKED
from fedsim.testing.loopback import deployment, flower_env, flwr_run
from fedsim.training import train

pytestmark = pytest.mark.slow


def test_warm_superexec_deployment_trains_like_local(tmp_path):
    with flower_env(tmp_path) as env, deployment(env, 2, tmp_path, warm=True):
        flwr_run(env, "deploy", f"epochs=2 batch-size=128 timeout=120.0 result='{tmp_path / 'result.json'}' "
                                f"transcript='{tmp_path / 'run'}'")
        result = json.loads((tmp_path / "result.json").read_text())
    assert "error" not in result, result
    local = train(TrainConfig(dataset="diabetes", parties=2, epochs=2, batch_size=128)).metrics
    for key, value in local.items():
        assert result["test"][key] == pytest.approx(value, rel=1e-5)
    view = load_party_view(tmp_path / "run", 1)
    assert [e.epoch for e in view.transcript.epochs] == [0, 1] and view.transcript.epochs[1].gradients.shape[0] > 0
    # every ClientApp task (hello, setup, 2 epochs x 3 steps + 1, collect) ran in a fork of the warm SuperExec
    # and none in a fresh flwr-clientapp process
    for k in range(2):
        node_log = (tmp_path / f"supernode_{k}.log").read_text() + (tmp_path / f"superexec_{k}.log").read_text()
        assert "Start `flwr-clientapp` process" not in node_log
        assert node_log.count(FORKED) == 10
