"""--label-party-features: the label party's own feature block and bottom model, in both runtimes."""

from __future__ import annotations

import numpy as np
import pytest
from fedsim_fixtures import small_config
from test_flower import assert_same_run, run_direct

from fedsim.cli.app import main
from fedsim.training import train


@pytest.fixture(scope="module")
def digits_run():
    config = small_config(dataset="digits", rows=None, parties=1, label_party_features=32, epochs=8)
    return train(config)


def test_the_label_party_keeps_the_last_columns(digits_run):
    ds = digits_run.dataset
    assert ds.label_block is not None and ds.label_block.source_columns[0] == "c4_r0"  # the right half
    assert ds.blocks[0].source_columns[-1] == "c3_r7" and ds.parties == 1  # the feature party: the left half
    assert digits_run.label_party.model.net[0].in_features == 2 * digits_run.config.model.embedding_dim


def test_its_embeddings_are_used_and_stay_with_it(digits_run):
    ds, label = digits_run.dataset, digits_run.label_party
    test_embeddings = [digits_run.feature_parties[0].embed(ds.blocks[0].test)]
    accuracy = np.mean(label.predict(test_embeddings, ds.label_block.test).argmax(1) == ds.y_test)
    blind = np.mean(label.predict(test_embeddings, np.zeros_like(ds.label_block.test)).argmax(1) == ds.y_test)
    # 0.84 at this seed since the label party's streams use its secret key (0.86 before): the bar is 0.8
    assert accuracy > 0.8 and blind < accuracy - 0.2  # without its half of the image the model is much worse
    view = digits_run.party_view(0)
    assert view.features.shape[1] == 32 and len(digits_run.transcripts) == 1 and view.n_parties == 1
    assert view.transcript.embedding_dim == digits_run.config.model.embedding_dim


def test_flower_parity_with_label_party_features():
    config = small_config(dataset="synthetic_multiclass", rows=300, parties=2, label_party_features=4, epochs=2)
    local, flower = train(config), run_direct(config)
    assert local.dataset.label_block.dim == 4
    assert_same_run(local, flower)


def test_random_partition_draws_its_columns_seeded():
    config = small_config(dataset="synthetic_multiclass", rows=200, label_party_features=3, partition="random")
    from fedsim.assembly import load_dataset

    a, b = load_dataset(config), load_dataset(config)
    own = a.label_block.source_columns
    assert own == b.label_block.source_columns and len(own) == 3
    assert not set(own) & {c for block in a.blocks for c in block.source_columns}


def test_nothing_left_for_the_feature_parties_is_exit_2(capsys):
    code = main(["train", "--dataset", "iris", "--parties", "2", "--label-party-features", "3", "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0
    assert "--label-party-features 3 leaves 1 of 4 feature columns for 2 feature parties" in err


def test_split_matches_monolithic_multiclass_with_the_label_partys_block():
    """Per-parameter Adam: the split run (own block included) is the monolithic model's computation."""
    from fedsim.metrics import task_metrics
    from fedsim.monolithic import predict_monolithic, train_monolithic

    config = small_config(dataset="synthetic_multiclass", rows=1500, parties=2, label_party_features=5, epochs=8)
    split = train(config, record=False)
    mono = task_metrics("multiclass", split.dataset.y_test,
                        predict_monolithic(train_monolithic(config, split.dataset), split.dataset))
    assert split.metrics["log_loss"] == pytest.approx(mono["log_loss"], rel=1e-3)
    assert split.metrics["accuracy"] == pytest.approx(mono["accuracy"], abs=0.01)
    assert split.metrics["accuracy"] > 0.4  # 5 classes: 0.2 by chance
