"""The Flower runtime in Flower's simulation engine (Ray backend). One run by default, the rest marked slow.

Ray starts a local cluster for every simulation (~15-25 s on 2 shared cores), so the default run keeps
one simulation that checks parity, the saved transcript folder and every message the ServerApp sends.
"""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from fedsim_fixtures import small_config
from test_flower import _fail_at, assert_same_run, label_values_in

from fedsim.cli.app import main
from fedsim.rundir import load_party_view, load_truth
from fedsim.runtime.flower import train_flower
from fedsim.runtime.flower.client import feature_app
from fedsim.runtime.flower.records import PartyFault
from fedsim.training import load_dataset, train


def test_simulation_matches_local_runtime_and_sends_no_labels(tmp_path):
    config = small_config(rows=200, parties=2, epochs=2)
    dataset = load_dataset(config)
    sent = []
    flower = train_flower(config.model_copy(update={"runtime": "flower"}), dataset, tmp_path / "run", audit=sent.append)
    assert_same_run(train(config), flower, atol=1e-5)
    assert flower.to_json()["runtime"] == "flower" and flower.to_json()["flower"]["engine"] == "simulation"
    labels = np.concatenate([dataset.y_train, dataset.y_test])
    assert sent and all(label_values_in(m, labels) == [] for m in sent)
    view = load_party_view(tmp_path / "run", 1)
    np.testing.assert_array_equal(view.transcript.epochs[-1].gradients, flower.transcripts[1].epochs[-1].gradients)
    np.testing.assert_array_equal(load_truth(tmp_path / "run")["y_train"], dataset.y_train)


@pytest.mark.slow
def test_cli_flower_runtime_matches_local(capsys):
    args = ["train", "--dataset", "diabetes", "--parties", "2", "--epochs", "2", "--json", "--quiet"]
    assert main(args) == 0
    local = json.loads(capsys.readouterr().out)
    assert main([*args, "--runtime", "flower"]) == 0
    flower = json.loads(capsys.readouterr().out)
    assert flower["runtime"] == "flower"
    for key, value in local["test"].items():
        assert flower["test"][key] == pytest.approx(value, rel=1e-5)


@pytest.mark.slow
def test_simulation_client_app_raising_stops_with_party_and_step():
    config = small_config(rows=200, parties=2, epochs=1, runtime="flower")
    with pytest.raises(PartyFault, match=r"feature party 1 at epoch 0 step 3: the feature party failed: .*on fire"):
        train_flower(config, load_dataset(config), timeout=30, client_app=feature_app([_fail_at(3, party=1)]))


def _hang_at(step: int, party: int):
    """A Flower mod: feature party `party` never answers the request for the embeddings of `step`."""

    def mod(message, context, call_next):
        info = message.content.config_records.get("step")
        if (info is not None and int(context.node_config["partition-id"]) == party
                and (int(info["next_epoch"]), int(info["next_step"])) == (0, step)):
            time.sleep(600)
        return call_next(message, context)

    return mod


@pytest.mark.slow
def test_simulation_stuck_client_app_times_out_instead_of_hanging():
    config = small_config(rows=200, parties=2, epochs=1, runtime="flower")
    with pytest.raises(PartyFault, match=r"feature party 0 at epoch 0 step 2: no reply within 5 s"):
        train_flower(config, load_dataset(config), timeout=5, client_app=feature_app([_hang_at(2, party=0)]))


@pytest.mark.slow
def test_simulation_eight_parties():
    config = small_config(rows=200, parties=8, epochs=1)
    assert_same_run(train(config), train_flower(config, load_dataset(config)), atol=1e-5)


@pytest.mark.parametrize("watched", [False, True])
def test_simulate_spends_no_cpu_while_the_engine_runs(monkeypatch, watched):
    """The watchdog waits on events; without `finished` (the AUC apps) there is none. It used to spin a core
    for the whole simulation there, so two AUC simulations side by side starved their ClientApp actors (both
    failed after the 120 s reply timeout; each took 29 s alone, 13 s without the spin)."""
    import threading

    import flwr.simulation

    from fedsim.runtime.flower.simulation import simulate

    monkeypatch.setattr(flwr.simulation, "run_simulation", lambda **kwargs: time.sleep(1.0))
    finished = threading.Event() if watched else None
    before = time.process_time()
    simulate(None, None, 2, finished)  # type: ignore[arg-type]
    assert time.process_time() - before < 0.3  # a spinning thread would use about the full second
