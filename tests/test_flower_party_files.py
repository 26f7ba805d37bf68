"""Per-party files (issue 22): each party reads only its own file, ids are aligned by PSI, and the run equals
the local runtime on the joined table; PSI in process; the label party's outputs are private."""

from __future__ import annotations

import json
import stat

import numpy as np
import pandas as pd
import pytest
from fedsim_fixtures import private_settings_in, small_config
from flwr.app import Message
from test_flower import label_values_in
from typer.testing import CliRunner

from fedsim.assembly import feature_setup
from fedsim.cli.app import app
from fedsim.config import ModelConfig, TrainConfig
from fedsim.errors import UserError
from fedsim.fileio import staged_directory, write_json_atomic
from fedsim.parties import FeaturePartySetup
from fedsim.runtime.flower.client import DATA_KEY, TRANSCRIPT_DIR_KEY, feature_app
from fedsim.runtime.flower.direct import DirectGrid
from fedsim.runtime.flower.records import PSI, SPLIT, PartyFault
from fedsim.runtime.flower.server import train_on_grid
from fedsim.training import train

pytest.importorskip("private_set_intersection")
from fedsim.deploy.psi import psi_answer, psi_request  # noqa: E402 - after the optional-extra skip

BASE = 1_000_000  # ids far from any row position, so a leaked id cannot pass for a batch row
OWN = ["c6", "c7"]  # the label party's own columns: the joined table's last two (label-party-features=2)


def three_files(tmp_path, rows=240, seed=0):
    """A joined table, and its three party files: each with ids only it holds and its rows shuffled."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 8))
    joined = pd.DataFrame(x, columns=[f"c{j}" for j in range(8)])
    joined.insert(0, "id", BASE + rng.permutation(10 * rows)[:rows])
    joined["y"] = (x[:, 0] + x[:, 4] - x[:, 7] + 0.3 * rng.normal(size=rows) > 0).astype(int)
    joined.to_csv(tmp_path / "joined.csv", index=False)
    extra = iter(range(BASE + 20 * rows, BASE + 30 * rows))

    def party_file(name, columns, shuffle):
        table = joined[["id", *columns]]
        noise = pd.DataFrame({"id": [next(extra) for _ in range(7)],
                              **{c: rng.normal(size=7) if c != "y" else rng.integers(0, 2, 7) for c in columns}})
        table = pd.concat([table, noise], ignore_index=True)
        if shuffle:
            table = table.sample(frac=1.0, random_state=seed)
        table.to_csv(tmp_path / name, index=False)
        return tmp_path / name

    label = party_file("label.csv", ["y", *OWN], shuffle=False)  # its order is the joined table's
    features = [party_file("f0.csv", ["c0", "c1", "c2"], True), party_file("f1.csv", ["c3", "c4", "c5"], True)]
    return joined, label, features


def settings(**values):
    return {"parties": 2, "epochs": 2, "batch_size": 32, "seed": 3,
            "model": ModelConfig(embedding_dim=4, bottom_hidden=8, top_hidden=8), **values}


def party_grid(files, id_column="id", **node):
    grid = DirectGrid(feature_app(), len(files))
    for k, path in enumerate(files):
        grid.contexts[k + 1].node_config.update({DATA_KEY: str(path), "id-column": id_column, **node})
    return grid


def test_psi_gives_the_intersection_and_no_id_in_the_clear():
    label_ids = [f"patient-{i:05d}" for i in range(0, 400, 3)]
    party_ids = [f"patient-{i:05d}" for i in range(0, 400, 5)]
    request = psi_request(label_ids)
    setup, response = psi_answer(request.request, request.size, party_ids)
    found = request.intersection(setup, response)
    assert [label_ids[i] for i in found] == sorted(set(label_ids) & set(party_ids))
    for wire in (request.request, setup, response):
        assert b"patient" not in wire  # blinded: no id travels in the clear, in either direction


def test_three_files_equal_the_local_run_on_the_joined_table_and_send_no_outside_id(tmp_path):
    joined, label, features = three_files(tmp_path)
    local = train(TrainConfig(data=str(tmp_path / "joined.csv"), target="y", id_column="id",
                              label_party_features=len(OWN), **settings()))
    sent: list[Message] = []
    config = TrainConfig(data=str(label), target="y", id_column="id", **settings())
    result = train_on_grid(party_grid(features), config, None, audit=sent.append)
    assert result.metrics.keys() == local.metrics.keys()
    for key, value in local.metrics.items():
        assert result.metrics[key] == pytest.approx(value, abs=1e-5)
    assert result.dataset.n_train == local.dataset.n_train and result.extra["flower"]["party_files"]
    assert result.extra["flower"]["nodes"] == {"0": 1, "1": 2}  # which node took part as which party
    np.testing.assert_array_equal(np.sort(result.dataset.train_ids), np.sort(local.dataset.train_ids))
    # the only ids sent are the intersection's, once each, in the split messages; PSI sends no id
    split = [m for m in sent if m.metadata.message_type == SPLIT]
    assert len(split) == 2 and len([m for m in sent if m.metadata.message_type == PSI]) == 2
    for message in split:
        record = message.content.array_records["split"]
        ids = np.concatenate([record["train"].numpy(), record["test"].numpy()])
        assert sorted(ids) == sorted(joined["id"])
    labels = pd.read_csv(label)["y"].to_numpy(dtype=np.float64)
    for message in sent:
        assert label_values_in(message, labels) == [], message.metadata.message_type
        for record in message.content.array_records.values():
            for array in record.values():
                values = array.numpy()
                if values.dtype.kind == "i":
                    assert set(values.ravel()) <= set(joined["id"]), message.metadata.message_type
        if message.metadata.message_type != SPLIT:
            for record in message.content.config_records.values():
                for value in record.values():
                    rows = value if isinstance(value, list) else [value]
                    assert not any(isinstance(v, int) and v >= BASE for v in rows)


def test_party_file_messages_hold_no_seed_or_label_party_setting(tmp_path):
    """With per-party files too, a feature party is told its `FeaturePartySetup` (in the split message) and
    ids, never the seed or a label-party setting; the setup equals what the local runtime builds from."""
    _, label, features = three_files(tmp_path)
    config = TrainConfig(data=str(label), target="y", id_column="id", label_defense="rr", epsilon=2.0,
                         **settings(seed=918_273_645, model=ModelConfig(embedding_dim=4, bottom_hidden=8,
                                                                        top_hidden=37, top_depth=2)))
    sent: list[Message] = []
    result = train_on_grid(party_grid(features), config, None, audit=sent.append)
    assert [private_settings_in(m, config) for m in sent] == [[]] * len(sent)
    setups = [FeaturePartySetup.model_validate_json(str(m.content.config_records["setup"]["party"]))
              for m in sent if m.metadata.message_type == SPLIT]
    assert [s.index for s in setups] == [0, 1]
    assert setups == [feature_setup(config, result.dataset, k) for k in range(2)]


def test_unstratified_split_ignores_the_labels(tmp_path):
    _, label, features = three_files(tmp_path)
    config = TrainConfig(data=str(label), target="y", id_column="id", **settings(epochs=1))
    first = train_on_grid(party_grid(features), config, None, split="unstratified")
    flipped = pd.read_csv(label).assign(y=lambda t: 1 - t["y"])
    flipped.to_csv(tmp_path / "flipped.csv", index=False)
    second = train_on_grid(party_grid(features), config.model_copy(update={"data": str(tmp_path / "flipped.csv")}),
                           None, split="unstratified")
    np.testing.assert_array_equal(first.dataset.test_ids, second.dataset.test_ids)


def test_each_feature_party_writes_its_own_private_transcript(tmp_path):
    _, label, features = three_files(tmp_path)
    config = TrainConfig(data=str(label), target="y", id_column="id", **settings(epochs=1))
    grid = party_grid(features)
    for k in range(2):
        grid.contexts[k + 1].node_config[TRANSCRIPT_DIR_KEY] = str(tmp_path / f"node{k}")
    train_on_grid(grid, config, None)
    for k in range(2):
        runs = list((tmp_path / f"node{k}").iterdir())
        assert len(runs) == 1 and sorted(p.name for p in runs[0].iterdir()) == ["manifest.json", f"party_{k}"]
        for path in [runs[0], *runs[0].rglob("*")]:
            assert stat.S_IMODE(path.stat().st_mode) == (0o700 if path.is_dir() else 0o600), path
    # the attack runs on a party's own folder, with the labels it knows and no truth folder
    trained = np.load(runs[0] / "party_1" / "sample_ids.npy")[:20]
    known = pd.read_csv(label).set_index("id").loc[trained, "y"].rename("label").reset_index()
    known.to_csv(tmp_path / "known.csv", index=False)
    outcome = CliRunner().invoke(app, ["attack", "--transcript", str(runs[0]), "--party", "1", "--known-labels",
                                       str(tmp_path / "known.csv"), "--attack", "norm_scoring", "--json", "--quiet"])
    assert outcome.exit_code == 0, outcome.output
    assert json.loads(outcome.stdout.strip().splitlines()[-1])["attack"] == "norm_scoring"


@pytest.mark.parametrize(("change", "error"), [
    ("no-id-column", "id column 'id' is not in"),
    ("duplicate-ids", "has duplicate ids"),
    ("disjoint", "intersection of the parties' ids is empty"),
])
def test_bad_party_files_are_one_clear_error(tmp_path, change, error):
    _, label, features = three_files(tmp_path)
    table = pd.read_csv(features[1])
    if change == "no-id-column":
        table = table.rename(columns={"id": "key"})
    elif change == "duplicate-ids":
        table.loc[1, "id"] = table.loc[0, "id"]
    else:
        table["id"] += 10 * BASE
    table.to_csv(features[1], index=False)
    config = TrainConfig(data=str(label), target="y", id_column="id", **settings(epochs=1))
    with pytest.raises((PartyFault, UserError), match=error) as caught:
        train_on_grid(party_grid(features), config, None)
    assert "\n" not in str(caught.value)


def test_node_without_its_file_is_one_clear_error(tmp_path):
    _, label, features = three_files(tmp_path)
    grid = party_grid(features)
    del grid.contexts[1].node_config[DATA_KEY]
    config = TrainConfig(data=str(label), target="y", id_column="id", **settings(epochs=1))
    with pytest.raises(PartyFault, match=r"node 1 during setup: .*node config has no 'data'"):
        train_on_grid(grid, config, None)


def test_party_count_mismatch_names_the_missing_party(tmp_path):
    _, label, features = three_files(tmp_path)
    config = TrainConfig(data=str(label), target="y", id_column="id", **settings(epochs=1))
    grid = party_grid(features)
    grid.contexts[2].node_config["partition-id"] = 2  # a node set up for a 3-party run
    with pytest.raises(PartyFault, match=r"no node holds feature parties \[1\]; partition-ids present: \[0, 2\]"):
        train_on_grid(grid, config, None)


def test_private_outputs_are_0600_and_0700(tmp_path):
    write_json_atomic(tmp_path / "result.json", {"a": 1}, private=True)
    assert stat.S_IMODE((tmp_path / "result.json").stat().st_mode) == 0o600
    with staged_directory(tmp_path / "run", private=True) as staging:
        (staging / "truth").mkdir()
        np.save(staging / "truth" / "labels.npy", np.zeros(3))
    for path in [tmp_path / "run", *(tmp_path / "run").rglob("*")]:
        assert stat.S_IMODE(path.stat().st_mode) == (0o700 if path.is_dir() else 0o600), path


def test_default_outputs_keep_their_modes(tmp_path):
    write_json_atomic(tmp_path / "result.json", small_config().model_dump(mode="json"))
    assert stat.S_IMODE((tmp_path / "result.json").stat().st_mode) & 0o044  # readable as before (umask 022)
