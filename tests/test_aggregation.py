"""`--top-model sum` (aggregation VFL, VFLAIR's setting): the label party adds the parties' outputs and applies
the loss. Parity of both runtimes, the width rule, the label party's own block, and the attack that is exact here."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from fedsim_fixtures import small_config
from test_flower import assert_same_run, run_direct

from fedsim.attacks.evaluate import evaluate_attack
from fedsim.cli.app import main
from fedsim.config import ModelConfig
from fedsim.errors import UserError
from fedsim.models import SumNet
from fedsim.training import load_dataset, train

SUM = ModelConfig(top_model="sum", bottom_hidden=16)
TASKS = [("synthetic_regression", 1), ("breast_cancer", 1), ("synthetic_multiclass", 5)]


def sum_config(dataset: str, **overrides):
    rows = None if dataset == "breast_cancer" else 300
    return small_config(**{"dataset": dataset, "rows": rows, "epochs": 2, "model": SUM, **overrides})


@pytest.mark.parametrize("dataset,outputs", TASKS)
def test_flower_matches_local_and_the_top_is_a_sum(dataset, outputs):
    config = sum_config(dataset)
    local, flower = train(config), run_direct(config)
    assert_same_run(local, flower, atol=1e-5)
    assert local.config.model.embedding_dim == outputs
    assert local.label_party.optimizer is None and not list(local.label_party.model.parameters())
    # what the label party predicts from is the plain sum of the parties' outputs (times the targets' scale)
    dataset_ = load_dataset(config)
    h = [p.embed(dataset_.blocks[k].test) for k, p in enumerate(local.feature_parties)]
    top = local.label_party.model
    np.testing.assert_allclose(top(torch.cat(h, dim=1)).numpy(), (top.offset + top.scale * sum(h)).numpy(),
                               rtol=1e-6, atol=1e-6)


def test_sum_net_adds_the_parties_blocks():
    h = torch.arange(12.0).reshape(2, 6)  # two rows, three parties of width 2
    torch.testing.assert_close(SumNet(2)(h), torch.tensor([[6.0, 9.0], [24.0, 27.0]]))


def test_label_party_features_join_the_sum():
    config = sum_config("synthetic_multiclass", label_party_features=4)
    local, flower = train(config), run_direct(config)
    assert_same_run(local, flower, atol=1e-5)
    own = local.label_party.own
    assert own is not None and own.embed(np.zeros((1, 4))).shape == (1, 5)


def test_a_width_other_than_the_outputs_is_one_line():
    config = sum_config("synthetic_multiclass", model=ModelConfig(top_model="sum", embedding_dim=7))
    with pytest.raises(UserError, match="--embedding-dim must be 5 or left out"):
        train(config)


def test_top_model_dp_needs_something_to_train():
    config = sum_config("synthetic_multiclass", defense_params={"top_dp_epsilon": 1.0}, delta=1e-5)
    with pytest.raises(UserError, match="top_dp_epsilon needs a trainable top model"):
        train(config)


@pytest.mark.parametrize("dataset,defence", [
    ("synthetic_multiclass", {"gradient_defense": "mid"}),
    ("synthetic_multiclass", {"gradient_defense": "cae", "defense_params": {"steps": 20}}),
    ("breast_cancer", {"gradient_defense": "laplace_noise", "defense_params": {"scale": 0.05}}),
    ("breast_cancer", {"gradient_defense": "dp_gradient", "epsilon": 2.0, "delta": 1e-5}),
])
def test_defences_act_on_a_sum_top(dataset, defence):
    """The defence changes what the feature party receives from the very first step (same seed otherwise)."""
    plain, defended = (train(sum_config(dataset, epochs=1, **d)) for d in ({}, defence))
    first = [r.transcripts[0].epochs[0].gradients[:32] for r in (plain, defended)]
    assert first[0].shape == first[1].shape and not np.allclose(*first, atol=1e-6)
    assert defended.privacy != plain.privacy


def test_direct_label_inference_is_exact_on_digits():
    """Exact: the cut gradient is (softmax - onehot)/B itself, whose one negative entry is the class."""
    config = small_config(dataset="digits", rows=None, epochs=1, model=ModelConfig(top_model="sum"))
    result = train(config)
    out = evaluate_attack(result.party_view(0), result.dataset.y_train, "direct_label_inference",
                          known_fraction=0.05, seed=0)
    assert out["projection"] == "none" and out["metrics"]["accuracy"] >= 0.99


def test_cli_trains_every_task_with_a_sum_top(capsys):
    for dataset, _ in TASKS:
        rows = [] if dataset == "breast_cancer" else ["--rows", "300"]
        assert main(["train", "--dataset", dataset, *rows, "--top-model", "sum", "--epochs", "1", "--json",
                     "--quiet"]) == 0
        out = json.loads(capsys.readouterr().out)
        assert out["dataset"] == dataset and out["test"]
    assert main(["train", "--dataset", "digits", "--top-model", "sum", "--embedding-dim", "4", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "--embedding-dim must be 10 or left out" in err and len(err.strip().splitlines()) == 1
