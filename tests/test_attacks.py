"""Label-inference attacks: exactness on a linear top model, margins on nonlinear data, knowledge handling,
disk == memory, binary scoring, and the `fedsim attack` command's errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fedsim import attacks
from fedsim.attacks import ATTACKS, AttackerKnowledge, evaluate_attack
from fedsim.cli.app import main
from fedsim.config import ModelConfig, TrainConfig
from fedsim.errors import UserError
from fedsim.rundir import load_party_view
from fedsim.training import train


def run(dataset: str, rows: int, epochs: int, top: str = "mlp", seed: int = 0, transcript=None):
    config = TrainConfig(dataset=dataset, rows=rows, parties=1, epochs=epochs, seed=seed,
                         model=ModelConfig(top_model=top))
    return train(config, transcript_dir=transcript, record=True)


@pytest.fixture(scope="module")
def linear_run():
    return run("synthetic_regression", 600, 3, top="linear")


@pytest.fixture(scope="module")
def mlp_run():
    return run("synthetic_regression", 1500, 10)


@pytest.fixture(scope="module")
def ctr_run():
    return run("synthetic_ctr", 3000, 3)


def test_registry_is_filled_on_import():
    assert {"lba", "gradient_inversion", "model_completion", "linear", "mean", "residual", "norm_scoring",
            "direction_scoring"} <= set(attacks.ATTACKS.names())
    for name in ATTACKS.names():
        cls = ATTACKS.get(name)
        assert cls.name == name and set(cls.tasks) <= {"regression", "binary", "multiclass"}
        assert isinstance(cls.needs_known_labels, bool)


def test_linear_closed_form_is_exact_on_a_linear_top_model(linear_run):
    view, y = linear_run.party_view(0), linear_run.dataset.y_train
    out = evaluate_attack(view, y, "linear", {"epochs": "all"}, seed=0)
    assert out["mode"] == "per_step" and out["epochs_used"] == [0, 1, 2]
    relative = np.sqrt(out["metrics"]["mse"]) / np.sqrt(np.mean(y**2))
    assert relative < 1e-4


def test_lba_with_a_linear_surrogate_recovers_a_linear_top_model(linear_run):
    # From random labels, gradient matching alone; the fit prior (lambda_t) assumes a well-fitted top model,
    # which three epochs do not give.
    out = evaluate_attack(linear_run.party_view(0), linear_run.dataset.y_train, "lba",
                          {"surrogate": "linear", "init": "random", "lambda_t": 0, "min_steps": 1500}, seed=0)
    assert out["metrics"]["r2"] > 0.99


def test_lba_and_residual_beat_mean_and_model_completion_on_nonlinear_data(mlp_run):
    view, y = mlp_run.party_view(0), mlp_run.dataset.y_train
    r2 = {name: evaluate_attack(view, y, name, seed=0)["metrics"]["r2"]
          for name in ("mean", "model_completion", "lba", "residual")}
    floor = max(r2["mean"], r2["model_completion"])
    assert r2["lba"] > floor + 0.1, r2
    assert r2["residual"] > floor + 0.1, r2


def test_result_keys_and_known_samples_are_not_scored(mlp_run):
    view, y = mlp_run.party_view(0), mlp_run.dataset.y_train
    out = evaluate_attack(view, y, "model_completion", known=25, seed=3)
    assert out["known_labels"] == 25 and out["n_attacked"] == len(y) - 25
    assert {"mse", "rmse", "mae", "r2", "spearman"} <= set(out["metrics"])
    assert out["baseline_mean_mse"] > 0 and out["timing"]["attack_s"] >= 0
    assert evaluate_attack(view, y, "mean", known_fraction=0.001)["known_labels"] == 10  # at least 10
    knowledge = AttackerKnowledge(view.sample_ids[:30], y[:30])
    result = ATTACKS.get("lba")({"min_steps": 5}).run(view, knowledge, np.random.default_rng(0))
    assert not np.intersect1d(result.ids, view.sample_ids[:30]).size
    assert len(result.ids) == len(y) - 30 and set(result.readouts) == {"dummy", "surrogate"}


def test_known_zero_allowed_only_for_attacks_that_need_none(mlp_run, ctr_run):
    out = evaluate_attack(ctr_run.party_view(0), ctr_run.dataset.y_train, "norm_scoring", known=0)
    assert out["known_labels"] == 0 and out["n_attacked"] == len(ctr_run.dataset.y_train)
    with pytest.raises(UserError, match="needs at least"):
        evaluate_attack(mlp_run.party_view(0), mlp_run.dataset.y_train, "lba", known=0)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"name": "nope"}, "unknown attack 'nope'; valid: "),
    ({"name": "lba", "params": {"bogus": 1}}, "unknown parameter 'bogus' for attack 'lba'; valid: batch"),
    ({"name": "lba", "params": {"lr": "fast"}}, "must be a finite number"),
    ({"name": "lba", "params": {"init": "zeros"}}, "must be one of"),
    ({"name": "lba", "params": {"epochs": 0}}, "'last', 'all'"),
    ({"name": "lba", "known_fraction": 0.0}, r"in \(0, 1\)"),
    ({"name": "lba", "known_fraction": 1.0}, r"in \(0, 1\)"),
    ({"name": "lba", "known": 10**6}, "only 1200 training samples"),
    ({"name": "norm_scoring"}, "supports binary"),
])
def test_bad_attack_inputs_are_one_line_user_errors(mlp_run, kwargs, message):
    with pytest.raises(UserError, match=message) as info:
        evaluate_attack(mlp_run.party_view(0), mlp_run.dataset.y_train, **kwargs)
    assert "\n" not in str(info.value)


def test_attacking_from_disk_equals_attacking_in_memory(tmp_path):
    result = run("diabetes", None, 3, transcript=tmp_path / "run")
    disk = load_party_view(tmp_path / "run", 0)
    y = result.dataset.y_train
    for name, params in (("linear", {"epochs": "all"}), ("lba", {"min_steps": 30})):
        a = evaluate_attack(result.party_view(0), y, name, params, seed=2)
        b = evaluate_attack(disk, y, name, params, seed=2)
        assert a["metrics"] == pytest.approx(b["metrics"], rel=1e-9)


def test_binary_scoring_attacks_leak_the_rare_class(ctr_run):
    view, y = ctr_run.party_view(0), ctr_run.dataset.y_train
    for name in ("norm_scoring", "direction_scoring"):
        out = evaluate_attack(view, y, name, seed=0)
        assert set(out["metrics"]) == {"auc", "accuracy", "advantage", "matched_auc", "matched_accuracy"}
        assert out["metrics"]["auc"] > 0.75, (name, out["metrics"])
    out = evaluate_attack(view, y, "lba", {"min_steps": 200}, seed=0)
    assert 0 <= out["metrics"]["auc"] <= 1 and set(out["readouts"]) == {"dummy", "surrogate"}


def test_cli_attack_prints_the_json_contract(tmp_path, capsys):
    assert main(["train", "--dataset", "diabetes", "--epochs", "2", "--parties", "1", "--transcript",
                 str(tmp_path / "t"), "--quiet", "--json"]) == 0
    capsys.readouterr()
    assert main(["attack", "--transcript", str(tmp_path / "t"), "--attack", "linear", "--known", "12", "--json",
                 "--quiet"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["attack"] == "linear" and payload["known_labels"] == 12
    assert {"metrics", "n_attacked", "baseline_mean_mse", "timing"} <= set(payload)


def test_cli_attack_bad_inputs_exit_2_with_one_line(tmp_path, capsys):
    good = tmp_path / "t"
    assert main(["train", "--dataset", "diabetes", "--epochs", "1", "--parties", "1", "--transcript", str(good),
                 "--quiet"]) == 0
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "manifest.json").write_text("{not json")
    cases = [
        (["--transcript", str(tmp_path / "missing"), "--attack", "lba"], "does not exist"),
        (["--transcript", str(corrupt), "--attack", "lba"], "corrupt transcript"),
        (["--transcript", str(good), "--attack", "nope"], "valid: active_model_completion, batch_label_inference"),
        (["--transcript", str(good), "--attack", "lba", "--known-fraction", "0"], "(0, 1)"),
        (["--transcript", str(good), "--attack", "lba", "--known-fraction", "1.5"], "(0, 1)"),
        (["--transcript", str(good), "--attack", "lba", "--known", "100000"], "known labels requested"),
        (["--transcript", str(good), "--attack", "lba", "--known", "0"], "needs at least"),
    ]
    capsys.readouterr()
    for args, message in cases:
        assert main(["attack", *args, "--quiet"]) == 2, args
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, (args, err)


@pytest.mark.parametrize("params", [
    {"distance": "cosine_l2", "init": "model_completion", "readout": "surrogate"},
    {"epochs": "all", "timed": True, "labels": "projected"},
    {"epochs": 50, "surrogate": "linear", "init": "random"},  # more epochs than recorded: all of them
])
def test_lba_options_run_and_report_what_they_used(mlp_run, params):
    out = evaluate_attack(mlp_run.party_view(0), mlp_run.dataset.y_train, "lba", {**params, "min_steps": 20}, seed=0)
    assert np.isfinite(out["metrics"]["r2"]) and out["params"]["min_steps"] == 20
    expected = [9] if params.get("epochs", "last") == "last" else list(range(10))
    assert out["epochs_used"] == expected
    assert out["metrics"] == out["readouts"][out["readout"]]


def test_gradient_inversion_needs_no_known_labels(mlp_run):
    out = evaluate_attack(mlp_run.party_view(0), mlp_run.dataset.y_train, "gradient_inversion", {"min_steps": 20},
                          known=0)
    assert out["known_labels"] == 0 and out["init_used"] == "random" and "baseline_mean_mse" not in out
