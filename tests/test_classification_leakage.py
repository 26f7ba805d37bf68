"""Classification leakage that relabelling cannot fool: features-only references, matched scores, the advantage
and the eps-label-DP bound on it (fedsim.attacks.evaluate, fedsim.attacks.bound)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fedsim.attacks.base import AttackResult
from fedsim.attacks.baselines import compute_references
from fedsim.attacks.bound import accuracy_bound, exceeds_bound
from fedsim.attacks.evaluate import ReferenceCache, draw_known, evaluate_attack, run_attack, score_attack
from fedsim.attacks.synthetic_transcripts import announce_defense, synthetic_view
from fedsim.metrics import attack_metrics, matched_classes


def test_a_fixed_relabelling_scores_zero_raw_and_one_matched():
    """CAE-style: every class mapped to the next one. Raw accuracy 0 (VFLAIR's reading), matched 1."""
    y = np.random.default_rng(0).integers(0, 10, 500).astype(float)
    relabelled = (y + 1) % 10
    metrics = attack_metrics("multiclass", y, relabelled)
    assert metrics["accuracy"] == 0.0 and metrics["matched_accuracy"] == 1.0 and metrics["matched_macro_f1"] == 1.0
    np.testing.assert_array_equal(matched_classes(y, relabelled), y)
    binary = attack_metrics("binary", y % 2, 1.0 - y % 2)  # every positive scored negative
    assert binary["auc"] == 0.0 and binary["matched_auc"] == 1.0 and binary["matched_accuracy"] == 1.0


def test_relabelled_attack_keeps_its_advantage_and_is_flagged():
    view, y = synthetic_view("sum", k=5, n=800)
    knowledge = draw_known(view, y, 0.05, None, 0)
    result, _ = run_attack(view, "direct_label_inference", None, knowledge)
    refs = compute_references(view, knowledge, 0, features_only=True)
    honest = score_attack(view, result, y, knowledge, refs)
    shifted = AttackResult(result.ids, np.roll(result.estimates, 1, axis=1))  # class c reported as c + 1
    fooled = score_attack(view, shifted, y, knowledge, refs)
    assert honest["metrics"]["accuracy"] == 1.0 and fooled["metrics"]["accuracy"] < 0.1
    assert fooled["advantage_scoring"] == "matched" and fooled["relabelled"] and not honest["relabelled"]
    assert fooled["metrics"]["advantage"] == pytest.approx(honest["metrics"]["advantage"])
    assert honest["metrics"]["advantage"] > 0.3


def test_multiclass_references_and_advantage():
    view, y = synthetic_view("linear", k=4, d=8, n=800)
    out = evaluate_attack(view, y, "direct_label_inference", known_fraction=0.1, seed=0)
    refs = out["references"]
    assert set(refs) == {"known_mean", "features_ridge", "features_gbt", "embeddings_ridge", "model_completion"}
    best = out["advantage_reference"]
    assert refs[best]["features_only"]
    assert out["metrics"]["advantage"] == pytest.approx(out["metrics"]["matched_accuracy"]
                                                        - refs[best]["matched_accuracy"])
    assert out["metrics"]["advantage_macro_f1"] == pytest.approx(out["metrics"]["matched_macro_f1"]
                                                                 - refs[best]["matched_macro_f1"])
    # The labels follow the features: logistic regression on 80 labels is well above the class frequencies.
    assert refs["features_ridge"]["accuracy"] > refs["known_mean"]["accuracy"] + 0.15
    assert "accuracy_bound" not in out  # no label-DP claim, no bound


def test_raw_advantage_when_the_known_labels_miss_a_class():
    view, y = synthetic_view("sum", k=5, n=400)
    knowledge = draw_known(view, y, None, 3, 0)  # three labels cannot cover five classes
    result, _ = run_attack(view, "direct_label_inference", None, knowledge)
    out = score_attack(view, result, y, knowledge, ReferenceCache().get(view, knowledge, 0))
    assert out["advantage_scoring"] == "raw"
    best = out["references"][out["advantage_reference"]]
    assert out["metrics"]["advantage"] == pytest.approx(out["metrics"]["accuracy"] - best["accuracy"])


@pytest.mark.parametrize("eps,k", [(0.5, 2), (1.0, 4), (4.0, 10)])
def test_bound_is_tight_for_rr_on_a_uniform_prior(eps, k):
    """Uniform prior: the Bayes attacker on a k-ary RR release is right with the keep probability, the bound."""
    assert accuracy_bound(np.full((7, k), 1.0 / k), eps) == pytest.approx(math.exp(eps) / (math.exp(eps) + k - 1))


def test_bayes_posterior_never_beats_the_bound():
    """Monte Carlo: skewed per-sample priors, RR at eps = 1; the exact Bayes guess stays within the bound."""
    rng = np.random.default_rng(0)
    n, k, eps = 20000, 3, 1.0
    prior = rng.dirichlet(np.full(k, 0.5), n)
    y = (prior.cumsum(1) > rng.random((n, 1))).argmax(1)
    keep = math.exp(eps) / (math.exp(eps) + k - 1)
    flip = rng.random(n) >= keep
    released = np.where(flip, (y + rng.integers(1, k, n)) % k, y)
    likelihood = np.where(np.arange(k)[None, :] == released[:, None], keep, (1 - keep) / (k - 1))
    guess = (prior * likelihood).argmax(1)
    accuracy, bound = float(np.mean(guess == y)), accuracy_bound(prior, eps)
    assert accuracy <= bound + 3 * math.sqrt(bound * (1 - bound) / n)
    assert accuracy > np.mean(prior.argmax(1) == y)  # the release does help: the bound is not vacuous here
    assert not exceeds_bound(accuracy, bound, n) and exceeds_bound(bound + 0.05, bound, n)


def test_a_release_read_exactly_from_gradients_exceeds_a_false_claim():
    """The attacker reads rr's release exactly (sum top); claiming a smaller eps than used is flagged."""
    view, y = synthetic_view("sum", k=4, n=1000, rr_epsilon=8.0)
    knowledge = draw_known(view, y, 0.05, None, 0)
    result, _ = run_attack(view, "direct_label_inference", None, knowledge)
    refs = compute_references(view, knowledge, 0, features_only=True)
    out = score_attack(view, result, y, knowledge, refs)
    assert out["accuracy_bound"] > 0.99 and not out["exceeds_bound"]  # eps 8: nearly anything is allowed
    announce_defense(view, epsilon=0.1)  # a false, much smaller claim
    false_claim = score_attack(view, result, y, knowledge, refs)
    assert false_claim["exceeds_bound"]
    assert false_claim["metrics"]["advantage"] > false_claim["advantage_bound"]


def test_residual_clips_to_the_public_label_range():
    """Laplace eps = 1 on [0, 10]: the residual attack never estimates outside the public clip range."""
    from fedsim.config import TrainConfig
    from fedsim.training import train

    config = TrainConfig(dataset="synthetic_regression", rows=400, parties=1, epochs=2, seed=0,
                         label_defense="laplace", epsilon=1.0, defense_params={"low": 0.0, "high": 10.0})
    run = train(config, record=True)
    view = run.party_view(0)
    knowledge = draw_known(view, run.dataset.y_train, 0.05, None, 0)
    result, out = run_attack(view, "residual", {"min_steps": 200}, knowledge)
    assert out["clipped_to"] == [0.0, 10.0]
    assert result.estimates.min() >= 0.0 and result.estimates.max() <= 10.0
    assert all(v.min() >= 0.0 and v.max() <= 10.0 for v in result.readouts.values())


def test_report_lists_relabelled_and_over_bound_cells():
    import pandas as pd

    from fedsim.experiments.report_classification import scoring_flags

    group = pd.DataFrame({"defense": ["cae", "rr", "none"], "strength": [0.5, 1.0, 0.0], "seed": [0, 1, 0],
                          "attack_label": ["direct_label_inference"] * 3, "relabelled": [True, False, None],
                          "exceeds_bound": [None, True, False]})
    flags = scoring_flags(group, "accuracy")
    assert len(flags) == 2
    assert flags[0].startswith("cae at 0.5, seed 0") and "relabelled" in flags[0]
    assert flags[1].startswith("rr at 1.0, seed 1") and "above the eps-label-DP bound" in flags[1]
