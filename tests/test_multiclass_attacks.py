"""Multiclass attacks on synthetic transcripts with a known top model (the shapes each attack claims), the
malicious party's step scale, and the task checks."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from fedsim.attacks.evaluate import draw_known, run_attack
from fedsim.attacks.synthetic_transcripts import synthetic_view
from fedsim.errors import UserError
from fedsim.metrics import attack_metrics
from fedsim.parties import FeatureParty


def accuracy(name, view, y, params=None, fraction=0.05):
    knowledge = draw_known(view, y, fraction, None, 0)
    result, out = run_attack(view, name, params, knowledge)
    return attack_metrics("multiclass", y[view.rows_of(result.ids)], result.estimates)["accuracy"], out


def test_direct_label_inference_is_exact_on_a_sum_top():
    view, y = synthetic_view("sum", k=5)
    acc, out = accuracy("direct_label_inference", view, y)
    assert acc == 1.0 and out["projection"] == "none"


def test_direct_label_inference_projects_through_a_linear_top():
    view, y = synthetic_view("linear", k=4, d=8)
    acc, out = accuracy("direct_label_inference", view, y)
    baseline, _ = accuracy("model_completion", view, y)
    assert out["projection"] == "linear" and acc > 0.9 and acc > baseline + 0.3


def test_direct_label_inference_without_projection_needs_k_wide_embeddings():
    view, y = synthetic_view("linear", k=4, d=8)
    with pytest.raises(UserError, match="needs an embedding of width K = 4"):
        accuracy("direct_label_inference", view, y, {"projection": "none"})


@pytest.mark.parametrize("top,d", [("sum", None), ("linear", 8)])
def test_direction_scoring_one_vs_rest(top, d):
    view, y = synthetic_view(top, d=d)
    acc, _ = accuracy("direction_scoring", view, y)
    assert acc > 0.85


def test_norm_scoring_gives_class_posteriors():
    """One number per sample: on balanced, equally hard classes it stays near the majority guess, not below it."""
    view, y = synthetic_view("sum", k=3, n=900)
    knowledge = draw_known(view, y, 0.1, None, 0)
    result, _ = run_attack(view, "norm_scoring", None, knowledge)
    assert result.estimates.shape == (len(result.ids), 3)
    assert np.allclose(result.estimates.sum(1), 1.0)
    acc = attack_metrics("multiclass", y[view.rows_of(result.ids)], result.estimates)["accuracy"]
    majority = np.bincount(knowledge.known_labels.astype(int)).argmax()
    assert acc > np.mean(y[view.rows_of(result.ids)] == majority) - 0.05  # never far below the majority guess


def test_batch_label_inference_beats_model_completion_on_a_linear_top():
    view, y = synthetic_view("linear", k=4, d=8)
    acc, _ = accuracy("batch_label_inference", view, y)
    baseline, _ = accuracy("model_completion", view, y)
    assert acc > baseline + 0.1


def test_lba_softmax_head_beats_model_completion():
    view, y = synthetic_view("linear", k=4, d=8)
    acc, out = accuracy("lba", view, y, {"min_steps": 400})
    baseline, _ = accuracy("model_completion", view, y)
    assert out["init_used"] == "model_completion" and acc > baseline + 0.1


def test_attacks_refuse_other_tasks_in_one_line():
    view, y = synthetic_view("sum")
    view.task = "binary"
    with pytest.raises(UserError, match="attack 'batch_label_inference' supports multiclass; this transcript is"):
        accuracy("batch_label_inference", view, (y > 0).astype(float))


def test_active_model_completion_refuses_an_honest_run():
    view, y = synthetic_view("sum")
    with pytest.raises(UserError, match="needs a run in which party 0 scaled its steps"):
        accuracy("active_model_completion", view, y)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_update_scale_multiplies_every_step(optimizer):
    """A malicious party's scaled step is exactly `update_scale` times the honest one, for SGD and Adam."""
    steps = []
    for scale in (1.0, 3.0):
        torch.manual_seed(0)
        model = torch.nn.Linear(3, 2)
        before = [p.detach().clone() for p in model.parameters()]
        opt_cls = torch.optim.SGD if optimizer == "sgd" else torch.optim.Adam
        party = FeatureParty(0, np.ones((4, 3)), np.arange(4), model, opt_cls(model.parameters(), lr=0.01),
                             update_scale=scale)
        party.forward(np.arange(4))
        party.backward(torch.ones(4, 2), 0, 0)
        steps.append(torch.cat([(p.detach() - b).reshape(-1) for p, b in zip(model.parameters(), before, strict=True)]))
    assert torch.allclose(steps[1], 3.0 * steps[0], rtol=1e-5, atol=1e-8)


def test_malicious_scale_is_recorded_and_active_completion_runs(tmp_path, capsys):
    from fedsim.cli.app import main

    folder = tmp_path / "run"
    code = main(["train", "--dataset", "iris", "--task", "multiclass", "--epochs", "2", "--batch-size", "16",
                 "--malicious-update-scale", "4", "--transcript", str(folder), "--quiet", "--json"])
    assert code == 0
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["public"]["malicious_update_scale"] == 4.0 and manifest["public"]["malicious_party"] == 0
    capsys.readouterr()
    code = main(["attack", "--transcript", str(folder), "--attack", "active_model_completion", "--known", "12",
                 "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["update_scale"] == 4.0 and 0 <= out["metrics"]["accuracy"] <= 1


def test_a_malicious_party_that_does_not_exist_is_one_line(capsys):
    from fedsim.cli.app import main

    code = main(["train", "--dataset", "iris", "--parties", "2", "--malicious-party", "2"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "malicious party 2 does not exist" in err


def test_mean_baseline_is_the_known_class_frequencies():
    view, y = synthetic_view("sum", k=4)
    knowledge = draw_known(view, y, 0.1, None, 0)
    result, _ = run_attack(view, "mean", None, knowledge)
    freq = np.bincount(knowledge.known_labels.astype(int), minlength=4) / len(knowledge.known_labels)
    assert np.allclose(result.estimates, freq[None, :])
