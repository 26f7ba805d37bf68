"""The `bayes` attack knows the public label mechanism: it never falls below the features-only reference under
RR / Laplace label DP (seeded synthetic sets, margins for the seed-to-seed spread), and refuses what it cannot
model."""

from __future__ import annotations

import numpy as np
import pytest

from fedsim.attacks.baselines import compute_references
from fedsim.attacks.evaluate import draw_known, run_attack, score_attack
from fedsim.attacks.synthetic_transcripts import announce_defense, synthetic_view
from fedsim.errors import NotApplicable, UserError


def advantage(view, y, fraction=0.1, params=None):
    knowledge = draw_known(view, y, fraction, None, 0)
    result, out = run_attack(view, "bayes", params, knowledge)
    scored = score_attack(view, result, y, knowledge, compute_references(view, knowledge, 0, features_only=True))
    return scored["metrics"]["advantage"], {**out, **scored}


@pytest.mark.parametrize("eps", [1.0, 4.0])
def test_bayes_is_at_least_the_features_only_reference_under_rr(eps):
    """Linear top, K = 4: measured +0.00 (eps 1, read-out agreement 0.28) and +0.37 (eps 4) at n = 1000."""
    view, y = synthetic_view("linear", k=4, d=8, n=1000, rr_epsilon=eps)
    adv, out = advantage(view, y)
    assert out["mechanism"] == "rr" and out["advantage_scoring"] == "matched"
    assert adv >= -0.03
    if eps == 4.0:
        assert adv > 0.2
    assert not out["exceeds_bound"]


@pytest.mark.slow
@pytest.mark.parametrize("eps", [1.0, 4.0])
def test_bayes_is_at_least_the_features_only_reference_under_laplace(eps):
    """Trains a small model and runs the residual read-out: about a minute per epsilon on 2 busy cores."""
    from fedsim.config import TrainConfig
    from fedsim.training import train

    config = TrainConfig(dataset="synthetic_regression", rows=500, parties=1, epochs=2, seed=0,
                         label_defense="laplace", epsilon=eps, defense_params={"low": 0.0, "high": 30.0})
    run = train(config, record=True)
    adv, out = advantage(run.party_view(0), run.dataset.y_train, params={"min_steps": 300})
    assert out["mechanism"] == "laplace"
    assert adv >= -0.03


def test_bayes_refuses_a_mechanism_it_cannot_model():
    view, y = synthetic_view("sum", k=3, n=200)
    announce_defense(view, label_defense="label_extension")
    with pytest.raises(UserError, match="cannot model label defence 'label_extension'.*it models: none, rr"):
        run_attack(view, "bayes", None, draw_known(view, y, 0.1, None, 0))


@pytest.mark.parametrize("facts", [{"gradient_defense": "cae"}, {"label_defense": "rr", "epsilon": 1.0,
                                                                  "gradient_defense": "grad_perturb"}])
def test_bayes_is_not_applicable_under_a_gradient_defence(facts):
    """A gradient defence changes what the read-out sees beyond the label mechanism's matrix: a grid records the
    refusal as not applicable (`NotApplicable`, a `UserError`: one line, exit 2 alone)."""
    view, y = synthetic_view("sum", k=3, n=200)
    announce_defense(view, **facts)
    with pytest.raises(NotApplicable, match=f"cannot model gradient defence '{facts['gradient_defense']}'; it "
                                            "models the label defences none, rr, rr_with_prior"):
        run_attack(view, "bayes", None, draw_known(view, y, 0.1, None, 0))


def test_bayes_without_a_defence_reads_the_labels():
    view, y = synthetic_view("sum", k=4, n=600)
    adv, out = advantage(view, y)
    assert out["mechanism"] == "none" and out["metrics"]["accuracy"] > 0.95 and adv > 0.3
    assert np.isfinite(out["calibration_agreement"])


@pytest.mark.slow
def test_best_picks_on_held_out_known_labels_and_reruns_the_winner():
    """Runs every multi-class candidate twice (LBA included): minutes on 2 busy cores."""
    view, y = synthetic_view("sum", k=4, n=600)
    knowledge = draw_known(view, y, 0.05, None, 0)
    result, out = run_attack(view, "best", None, knowledge)
    assert out["held_out_known"] == 9 and out["held_out_metric"] == "accuracy"
    assert out["held_out_score"] == max(out["candidates"].values())
    assert out["chosen"] in {"direct_label_inference", "bayes"}  # both read the labels exactly here
    truth = y[view.rows_of(result.ids)]
    assert np.mean(result.estimates.argmax(1) == truth) > 0.95


def test_best_needs_ten_known_labels():
    view, y = synthetic_view("sum", k=3, n=200)
    with pytest.raises(UserError, match="attack 'best' needs at least 10 known labels, got 9"):
        run_attack(view, "best", None, draw_known(view, y, None, 9, 0))
