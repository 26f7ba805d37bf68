"""Flower runtime without an engine (DirectGrid): parity with the local runtime, faults, reply checks, no label leak.

The same ServerApp loop and ClientApp handlers run in the Ray simulation and in a deployment
(tests/test_flower_engine.py, tests/test_flower_deploy.py); here they exchange messages in-process.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from fedsim_fixtures import private_settings_in, small_config
from flwr.app import Array, ArrayRecord, ConfigRecord, Message, RecordDict

from fedsim.assembly import feature_setup, resolve_defenses
from fedsim.config import ModelConfig
from fedsim.errors import UserError
from fedsim.params import parse_params
from fedsim.parties import FeaturePartySetup
from fedsim.runtime.flower.apps import client_app as feature_app_default
from fedsim.runtime.flower.client import feature_app
from fedsim.runtime.flower.direct import DirectGrid
from fedsim.runtime.flower.records import STEP, PartyFault, check_embeddings
from fedsim.runtime.flower.server import parse_nodes, settings_from_run_config, train_on_grid
from fedsim.training import load_dataset, make_schedule, train


def assert_same_run(local, flower, atol: float = 0.0) -> None:
    """Same transcripts (batch ids, steps, embeddings, gradients), bottom models and test metrics."""
    assert len(local.transcripts) == len(flower.transcripts)
    for a, b in zip(local.transcripts, flower.transcripts, strict=True):
        assert a.epoch_numbers == b.epoch_numbers
        for ea, eb in zip(a.epochs, b.epochs, strict=True):
            np.testing.assert_array_equal(ea.batch_ids, eb.batch_ids)
            np.testing.assert_array_equal(ea.steps, eb.steps)
            np.testing.assert_allclose(ea.embeddings, eb.embeddings, rtol=0, atol=atol)
            np.testing.assert_allclose(ea.gradients, eb.gradients, rtol=0, atol=atol)
    for k in range(len(local.feature_parties)):
        for pa, pb in zip(local.feature_parties[k].model.parameters(), flower.feature_parties[k].model.parameters(),
                          strict=True):
            torch.testing.assert_close(pa, pb, rtol=0, atol=atol)
    assert local.metrics.keys() == flower.metrics.keys()
    for key, value in local.metrics.items():
        assert flower.metrics[key] == pytest.approx(value, rel=1e-5, abs=1e-5)
    assert flower.privacy == local.privacy


def run_direct(config, client_app=None, grid_cls=DirectGrid, **kwargs):
    grid = grid_cls(client_app or feature_app_default, config.parties)
    return train_on_grid(grid, config, load_dataset(config), **kwargs)


@pytest.mark.parametrize("parties", [1, 3, 8])
def test_parity_with_local_runtime_for_k_parties(parties):
    config = small_config(rows=200, parties=parties, epochs=2)
    assert_same_run(train(config), run_direct(config))


def test_parity_binary_with_defences_and_last_epochs():
    config = small_config(dataset="breast_cancer", rows=None, epochs=3, record_last_epochs=2,
                          label_defense="rr", epsilon=2.0, gradient_defense="gaussian_noise", optimizer="sgd")
    local, flower = train(config), run_direct(config)
    assert flower.transcripts[0].epoch_numbers == [1, 2]
    assert_same_run(local, flower)
    view = flower.party_view(1)
    assert view.transcript.embedding_dim == config.model.embedding_dim
    assert flower.to_json()["runtime"] == "local"  # the config says so; the Flower path reports it via extra
    assert flower.to_json()["flower"]["round_trips_per_step"] == pytest.approx(1 + 1 / flower.steps)


def test_parity_with_the_two_stage_label_defence():
    """rr_with_prior releases its stage-2 labels mid-training from the top model's probabilities: the same
    labels, transcripts and metrics in both runtimes."""
    config = small_config(dataset="synthetic_multiclass", rows=300, epochs=2, label_defense="rr_with_prior",
                          epsilon=1.0)
    assert_same_run(train(config), run_direct(config), atol=1e-5)


def _fail_at(step: int, party: int):
    """A Flower mod: feature party `party` raises when asked for the embeddings of `step` (epoch 0)."""

    def mod(message, context, call_next):
        info = message.content.config_records.get("step")
        if (info is not None and int(context.node_config["partition-id"]) == party
                and (int(info["next_epoch"]), int(info["next_step"])) == (0, step)):
            raise RuntimeError("disk on fire")
        return call_next(message, context)

    return mod


def test_client_app_that_raises_names_party_and_step():
    config = small_config(rows=200, parties=2, epochs=1)
    with pytest.raises(PartyFault, match=r"feature party 1 at epoch 0 step 3: the feature party failed: .*on fire"):
        run_direct(config, feature_app([_fail_at(3, party=1)]))


def _corrupt(kind: str):
    """A Flower mod: feature party 0 tampers with its reply for epoch 0 step 2."""

    def mod(message, context, call_next):
        reply = call_next(message, context)
        info = message.content.config_records.get("step")
        if (message.metadata.message_type != STEP or int(context.node_config["partition-id"]) != 0
                or (int(info["next_epoch"]), int(info["next_step"])) != (0, 2)):
            return reply
        h = reply.content.array_records["embeddings"]["h"].numpy().copy()
        if kind == "nan":
            h[0, 0] = np.nan
        elif kind == "shape":
            h = h[:, :-1]
        elif kind == "dtype":
            h = h.astype(np.float64)
        elif kind == "step":
            reply.content["step"] = ConfigRecord({"epoch": 0, "step": 1})
        reply.content["embeddings"] = ArrayRecord({"h": Array(np.ascontiguousarray(h))})
        return reply

    return mod


@pytest.mark.parametrize(("kind", "error"), [
    ("nan", "NaN/inf"), ("shape", "shape"), ("dtype", "dtype float64"), ("step", "wrong step"),
])
def test_invalid_replies_are_rejected_with_party_and_step(kind, error):
    config = small_config(rows=200, parties=2, epochs=1)
    with pytest.raises(PartyFault, match=rf"feature party 0 at epoch 0 step 2: .*{error}"):
        run_direct(config, feature_app([_corrupt(kind)]))


def test_check_embeddings_rejects_missing_records_and_extra_arrays():
    good = np.zeros((4, 3), np.float32)
    content = RecordDict({"step": ConfigRecord({"epoch": 1, "step": 5}), "embeddings": ArrayRecord({"h": Array(good)})})
    assert check_embeddings(content, 2, 1, 5, 4, 3).shape == (4, 3)
    with pytest.raises(PartyFault, match="feature party 2 at epoch 1 step 5: invalid reply"):
        check_embeddings(RecordDict({"step": ConfigRecord({"epoch": 1, "step": 5})}), 2, 1, 5, 4, 3)
    extra = RecordDict({"step": ConfigRecord({"epoch": 1, "step": 5}),
                        "embeddings": ArrayRecord({"h": Array(good), "x": Array(good)})})
    with pytest.raises(PartyFault, match="exactly 'h'"):
        check_embeddings(extra, 2, 1, 5, 4, 3)


class SilentPartyGrid(DirectGrid):
    """Feature party 1 (node 2) stops answering after the setup and the first step."""

    def __init__(self, client_app, nodes):
        super().__init__(client_app, nodes)
        self.steps_to_node_2 = 0

    def push_messages(self, messages):
        messages = list(messages)
        ids = super().push_messages(messages)
        for message, message_id in zip(messages, ids, strict=True):
            if message.metadata.dst_node_id == 2 and message.metadata.message_type == STEP:
                self.steps_to_node_2 += 1
                if self.steps_to_node_2 > 1:
                    self.replies.pop(message_id)
        return ids


def test_silent_party_times_out_with_party_and_step():
    config = small_config(rows=200, parties=2, epochs=1)
    with pytest.raises(PartyFault, match=r"feature party 1 at epoch 0 step 1: no reply within 0.3 s"):
        run_direct(config, grid_cls=SilentPartyGrid, timeout=0.3)


def label_values_in(message: Message, labels: np.ndarray) -> list[str]:
    """Where a training-label value occurs in a message (any array entry or config value)."""
    found = []
    as32 = labels.astype(np.float32)
    for name, record in message.content.array_records.items():
        for key in record:
            values = record[key].numpy()
            if np.issubdtype(values.dtype, np.floating) and np.isin(values.astype(np.float32), as32).any():
                found.append(f"{name}.{key}")
    for name, record in message.content.config_records.items():
        for key, value in record.items():
            flat = value if isinstance(value, list) else [value]
            if any(isinstance(v, float) and np.isin(np.float32(v), as32) for v in flat):
                found.append(f"{name}.{key}")
    return found


ALLOWED = {
    "query.hello": {"hello": {"party_files"}},
    "query.setup": {"setup": {"party"}, "data": {"features", "train_ids"}},
    "train.step": {"step": {"grad_epoch", "grad_step", "next_epoch", "next_step", "rows"}, "gradient": {"g"}},
    "query.collect": {},
}


def test_no_label_leaves_the_server_app():
    config = small_config(rows=200, parties=2, epochs=2)
    dataset = load_dataset(config)
    sent: list[Message] = []
    train_on_grid(DirectGrid(feature_app_default, 2), config, dataset, audit=sent.append)
    steps = make_schedule(config, dataset).total_steps
    assert len(sent) == 2 * (2 + steps + 1 + 1)  # hello, setup, first request, one per step, collect: per party
    labels = np.concatenate([dataset.y_train, dataset.y_test])
    for message in sent:
        allowed = ALLOWED[message.metadata.message_type]
        assert set(message.content.keys()) <= set(allowed)
        for name in message.content:
            assert set(message.content[name].keys()) == allowed[name]
        assert label_values_in(message, labels) == []
        assert str(labels[0]) not in message.content.config_records.get("setup", {}).get("party", "")
    # the detector does see labels when they are there
    leaky = Message(RecordDict({"gradient": ArrayRecord({"g": Array(dataset.y_train[:5].reshape(-1, 1))})}), 1, STEP)
    assert label_values_in(leaky, labels) == ["gradient.g"]


def test_setup_messages_hold_no_seed_or_label_party_setting():
    """Every message the label party sends: no seed, no label-party setting; a setup is a `FeaturePartySetup`
    (public facts and the party's own model's settings) and the party's own block, equal to the local build."""
    config = small_config(rows=200, parties=2, epochs=1, seed=918_273_645, label_party_features=1,
                          model=ModelConfig(embedding_dim=4, bottom_hidden=16, top_hidden=37, top_depth=2),
                          label_defense="laplace", epsilon=1.0, gradient_defense="gaussian_noise",
                          defense_params={"low": 0.0, "high": 400.0, "scale": 0.25})
    dataset = load_dataset(config)
    sent: list[Message] = []
    train_on_grid(DirectGrid(feature_app_default, 2), config, dataset, audit=sent.append)
    assert [private_settings_in(m, config) for m in sent] == [[]] * len(sent)
    setups = {}
    for message in (m for m in sent if m.metadata.message_type == "query.setup"):
        setup = FeaturePartySetup.model_validate_json(str(message.content.config_records["setup"]["party"]))
        setups[setup.index] = setup
        assert setup == feature_setup(config, dataset, setup.index)  # what the local runtime builds from
        data = message.content.array_records["data"]
        np.testing.assert_array_equal(data["features"].numpy(), dataset.blocks[setup.index].train)
        np.testing.assert_array_equal(data["train_ids"].numpy(), dataset.train_ids)
    assert sorted(setups) == [0, 1] and setups[0].init_seed != setups[1].init_seed
    assert setups[0].public.defense.params == {"low": 0.0, "high": 400.0}  # public clip range only
    # the check is not vacuous: the former setup (the whole config) and a bare seed are both reported
    whole = Message(RecordDict({"setup": ConfigRecord({"config": config.model_dump_json()})}), 1, "query.setup")
    assert {"setup.config:seed", "setup.config:top_hidden", "setup.config:scale",
            "setup.config=seed"} <= set(private_settings_in(whole, config))
    ids = Message(RecordDict({"data": ArrayRecord({"train_ids": Array(np.array([3, config.seed]))})}), 1, "query.setup")
    assert private_settings_in(ids, config) == ["data.train_ids=seed"]


def test_a_node_beyond_the_parties_gets_only_the_empty_hello():
    config = small_config(rows=200, parties=2, epochs=1)
    dataset = load_dataset(config)
    sent: list[Message] = []
    result = train_on_grid(DirectGrid(feature_app_default, 3), config, dataset, audit=sent.append)
    extra = [m for m in sent if m.metadata.dst_node_id == 3]
    assert [m.metadata.message_type for m in extra] == ["query.hello"]
    assert extra[0].content.config_records["hello"]["party_files"] is False and len(extra[0].content) == 1
    assert result.extra["flower"]["nodes"] == {"0": 1, "1": 2}  # the parties that took part, by node


def test_a_declared_federation_sends_nothing_to_other_nodes(monkeypatch):
    """nodes= declares {partition: node id}: the third node gets no message at all (not even the hello), a
    node holding another partition than declared stops the run before any setup, and a declared node that
    never connects is named."""
    config = small_config(rows=200, parties=2, epochs=1)
    dataset = load_dataset(config)
    sent: list[Message] = []
    result = train_on_grid(DirectGrid(feature_app_default, 3), config, dataset, audit=sent.append,
                           declared=parse_nodes("1:0 2:1", 2))
    assert {m.metadata.dst_node_id for m in sent} == {1, 2}
    assert result.extra["flower"]["nodes"] == {"0": 1, "1": 2}
    sent.clear()
    swapped = r"node (1 holds partition-id 0, .* partition 1|2 holds partition-id 1, .* partition 0)"
    with pytest.raises(PartyFault, match=swapped):
        train_on_grid(DirectGrid(feature_app_default, 3), config, dataset, audit=sent.append,
                      declared=parse_nodes("2:0 1:1", 2))
    assert {m.metadata.message_type for m in sent} == {"query.hello"}  # nothing past the hello
    monkeypatch.setattr("fedsim.runtime.flower.server.SETUP_TIMEOUT_S", 0.3)
    with pytest.raises(PartyFault, match=r"declared nodes \[7\] did not connect within"):
        train_on_grid(DirectGrid(feature_app_default, 2), config, dataset, timeout=0.3,
                      declared=parse_nodes("1:0 7:1", 2))


@pytest.mark.parametrize("text,fragment", [
    ("1:0", "must name each partition 0..1 once"), ("1:0 2:0", "names partition 0 twice"),
    ("1:0 1:1", "one node id for two partitions"), ("a:0 2:1", "NODE_ID:PARTITION pairs"),
    ("1-0 2:1", "NODE_ID:PARTITION pairs"), ("1:0 2:1 3:2", "must name each partition 0..1 once"),
])
def test_bad_declared_federations_are_one_line(text, fragment):
    with pytest.raises(UserError, match=fragment):
        parse_nodes(text, 2)


def test_run_config_from_pyproject_and_bad_values():
    import tomllib
    from pathlib import Path

    pyproject = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    defaults = pyproject["tool"]["flwr"]["app"]["config"]
    config, runtime = settings_from_run_config(defaults)
    assert (config.dataset, config.parties, config.runtime, config.epsilon) == ("diabetes", 2, "flower", None)
    assert runtime == {"timeout": 60.0, "overwrite": False}
    with pytest.raises(UserError, match="parties"):
        settings_from_run_config({**defaults, "parties": 0})
    laplace = {**defaults, "label-defense": "laplace", "epsilon": 1.0, "defense-params": "low=0 high=30"}
    config, _ = settings_from_run_config(laplace)
    assert config.defense_params == {"low": 0, "high": 30} == parse_params(["low=0", "high=30"], "--defense-param")
    assert (resolve_defenses(config, "regression")[0].high, config.epsilon) == (30.0, 1.0)
    config, _ = settings_from_run_config({**laplace, "defense-params": "low=0 high=x"})
    with pytest.raises(UserError, match="defence 'laplace': parameter high must be a finite number; got 'x'"):
        resolve_defenses(config, "regression")
    with pytest.raises(UserError, match="defense-params takes KEY=VALUE"):
        settings_from_run_config({**defaults, "defense-params": "low"})
