"""Leakage above the features-only baseline: the references, the advantage, its caching, and reports that say
what they measured (formats, headlines that agree with their numbers, no markdown in terminal output)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from fedsim.attacks import baselines, evaluate
from fedsim.attacks.evaluate import ReferenceCache, draw_known, evaluate_attack
from fedsim.cli.app import main
from fedsim.config import ModelConfig, TrainConfig
from fedsim.experiments import report_leakage, report_markdown
from fedsim.training import train


@pytest.fixture(scope="module")
def linear_run():
    """One party holding every feature, a linear top model: the `linear` attack recovers labels exactly."""
    config = TrainConfig(dataset="synthetic_regression", rows=600, parties=1, epochs=3, seed=0,
                         model=ModelConfig(top_model="linear"))
    return train(config, record=True)


def test_advantage_is_the_attack_metric_minus_the_best_features_only_reference(linear_run):
    view, y = linear_run.party_view(0), linear_run.dataset.y_train
    out = evaluate_attack(view, y, "linear", {"epochs": "all"}, known_fraction=0.05, seed=0)
    refs = out["references"]
    assert set(refs) == {"known_mean", "features_ridge", "features_gbt", "embeddings_ridge", "model_completion"}
    assert {name for name, r in refs.items() if r["features_only"]} == {"known_mean", "features_ridge",
                                                                         "features_gbt"}
    best = out["advantage_reference"]
    assert refs[best]["features_only"]
    assert refs[best]["r2"] == max(r["r2"] for r in refs.values() if r["features_only"])
    assert out["metrics"]["advantage"] == pytest.approx(out["metrics"]["r2"] - refs[best]["r2"])
    # The linear attack is exact here; the features alone (Friedman #1 from 30 labels) are far from it.
    assert out["metrics"]["r2"] > 0.999 and out["metrics"]["advantage"] > 0.3
    # The mean predictor on the attacked samples: the same number as baseline_mean_mse.
    assert refs["known_mean"]["mse"] == pytest.approx(out["baseline_mean_mse"])


def test_more_known_labels_raise_the_reference_and_shrink_the_advantage(linear_run):
    view, y = linear_run.party_view(0), linear_run.dataset.y_train
    few = evaluate_attack(view, y, "linear", {"epochs": "all"}, known_fraction=0.02, seed=0)
    many = evaluate_attack(view, y, "linear", {"epochs": "all"}, known_fraction=0.5, seed=0)
    assert many["references"][many["advantage_reference"]]["r2"] > 0.6  # trees on 240 labels: about 0.9
    assert many["metrics"]["advantage"] < few["metrics"]["advantage"] - 0.2


def test_references_are_fitted_once_per_known_labels(linear_run, monkeypatch):
    view, y = linear_run.party_view(0), linear_run.dataset.y_train
    calls = []
    original = evaluate.compute_references
    monkeypatch.setattr(evaluate, "compute_references", lambda *a: calls.append(1) or original(*a))
    cache = ReferenceCache()
    first = evaluate_attack(view, y, "mean", known_fraction=0.05, seed=0, references=cache)
    second = evaluate_attack(view, y, "linear", known_fraction=0.05, seed=0, references=cache)
    assert len(calls) == 1 and first["references"] == second["references"]
    evaluate_attack(view, y, "mean", known_fraction=0.05, seed=1, references=cache)  # other known labels
    assert len(calls) == 2


def test_references_read_only_the_known_labels(linear_run):
    view, y = linear_run.party_view(0), linear_run.dataset.y_train
    knowledge = draw_known(view, y, 0.05, None, 0)
    refs = baselines.compute_references(view, knowledge, seed=0)
    unknown = np.setdiff1d(np.arange(len(y)), view.rows_of(knowledge.known_ids))
    shuffled = y.copy()
    shuffled[unknown] = np.random.default_rng(0).permutation(y[unknown])  # other truth, same known labels
    again = baselines.compute_references(view, draw_known(view, shuffled, 0.05, None, 0), seed=0)
    for a, b in zip(refs, again, strict=True):
        np.testing.assert_array_equal(a.predictions, b.predictions)
    assert baselines.compute_references(view, draw_known(view, y, None, 1, 0), seed=0) == []  # one label: none


def test_binary_advantage_is_a_leak_auc_difference(tmp_path, capsys):
    folder = tmp_path / "t"
    assert main(["train", "--dataset", "synthetic_ctr", "--rows", "1500", "--epochs", "2", "--transcript",
                 str(folder), "--record-last-epochs", "1", "--quiet", "--json"]) == 0
    capsys.readouterr()
    assert main(["attack", "--transcript", str(folder), "--attack", "norm_scoring", "--known", "40", "--json",
                 "--quiet"]) == 0
    out = json.loads(capsys.readouterr().out)
    best = out["references"][out["advantage_reference"]]
    assert out["metrics"]["advantage"] == pytest.approx(out["metrics"]["auc"] - best["auc"])
    assert out["references"]["known_mean"]["auc"] == pytest.approx(0.5)
    assert main(["attack", "--transcript", str(folder), "--attack", "norm_scoring", "--known", "40",
                 "--quiet"]) == 0
    human = capsys.readouterr().out
    assert f"advantage: {out['metrics']['advantage']:+.4g} auc over {out['advantage_reference']}" in human


def test_a_column_has_one_number_format():
    fixed = report_markdown.column_format(pd.Series([1.236, 14.63, 881.5]))
    assert [fixed(v) for v in (1.236, 881.5)] == ["1.24", "881.50"]
    wide = report_markdown.column_format(pd.Series([-4.4e-06, -0.17, 0.0013]), signed=True, digits=2)
    assert [wide(v) for v in (-4.4e-06, -0.17)] == ["-4.4e-06", "-1.7e-01"]
    assert report_markdown.column_format(pd.Series([0.99, -0.015]))(0.5) == "0.5000"  # 3 digits for -0.015
    assert report_markdown.column_format(pd.Series([7.9e-05, 0.015]), digits=2)(0.015) == "1.5e-02"  # 0.0001 would lose
    assert report_markdown.column_format(pd.Series([0.99, -0.015]), decimals=3)(0.5) == "0.500"


def settings_frame(none_loss: float, laplace_losses: list[float], advantages: list[float]) -> pd.DataFrame:
    rows = [{"defense_key": "none", "strength_key": np.nan, "strength_param": None, "loss_mean": none_loss,
             "best_adv_mean": 0.5, "best_leak_mean": 0.9, "best_attack": "lba", "is_none": True}]
    rows += [{"defense_key": "laplace", "strength_key": eps, "strength_param": "epsilon", "loss_mean": loss,
              "best_adv_mean": adv, "best_leak_mean": adv + 0.4, "best_attack": "lba", "is_none": False}
             for eps, loss, adv in zip([1.0, 8.0], laplace_losses, advantages, strict=True)]
    return pd.DataFrame(rows)


def test_summary_agrees_with_the_increase_it_prints():
    m = report_leakage.Measures.of("regression")
    # +10.04% prints as +10.0%: within the +10% budget, never "no setting within +10%; ... costs +10.0%".
    lines = report_leakage.summaries(settings_frame(1.0, [5.0, 1.1004], [0.1, 0.3]), m, "d", advantage=True)
    assert lines == ["laplace (d): advantage +0.300 (lba) at ε=8, test MSE +10.0% (no defence: +0.500)"]
    lines = report_leakage.summaries(settings_frame(1.0, [5.0, 1.2], [0.1, 0.3]), m, "d", advantage=True)
    assert lines[0].startswith("laplace (d): no setting within +10% test MSE; the mildest, ε=8, costs +20.0%")
    assert not any("*" in line for line in lines)


def test_report_states_what_was_measured(tmp_path, capsys):
    grid = tmp_path / "grid.toml"
    grid.write_text('name = "tiny"\n[leakage]\ndatasets = ["diabetes"]\nseeds = [0, 1]\n'
                    'attacks = ["mean", {name = "model_completion", params = {steps = 20}}]\n'
                    'training = {epochs = 2, batch_size = 128, record_last_epochs = 1}\n'
                    'defenses = [{}, {label = "laplace", epsilons = [1.0], params = {bounds_share = 0.1}}]\n'
                    '[auc]\nsources = ["breast_cancer"]\nmethods = ["dpauc"]\nepsilons = [1.0]\nrepeats = 4\n')
    out = tmp_path / "out"
    assert main(["bench", str(grid), "--out", str(out), "--workers", "1", "--quiet"]) == 0
    table = pd.read_parquet(out / "results.parquet")
    leak = table[table["kind"] == "leakage"]
    best = leak[["reference_known_mean_r2", "reference_features_ridge_r2", "reference_features_gbt_r2"]].max(axis=1)
    np.testing.assert_allclose(leak["attack_advantage"], leak["attack_r2"] - best)
    assert leak.groupby("cell")["reference_features_ridge_r2"].nunique().eq(1).all()  # once per cell
    capsys.readouterr()
    assert main(["report", str(out)]) == 0
    printed = capsys.readouterr().out
    text = (out / "report.md").read_text()
    for needle in ("feature party 0 attacks", "known labels (", "of 353 training rows", "Training: 2 epochs",
                   "unknown training labels", "squared label units", "nominal 95%", "dpauc (K=100)",
                   "advantage", "Raw attack R²"):
        assert needle in text, needle
    assert "**" not in printed and "over the best features-only reference" in printed
    assert "| none | — | none |" in text and "| laplace | ε=1 | 1.00 |" in text
