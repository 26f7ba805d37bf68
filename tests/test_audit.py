"""Canary audits (fedsim.audit): validity of the bound on correct mechanisms, detection of a broken one,
private-AUC releases, and small end-to-end training audits (the heavier ones are marked slow)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binom

from fedsim.audit.auc import audit_auc
from fedsim.audit.ideal import IdealLaw, planned_guesses
from fedsim.audit.mechanism import audit_label_mechanism
from fedsim.audit.training import audit_training
from fedsim.config import TrainConfig
from fedsim.defenses.label_noise import GaussianLabels, LaplaceLabels
from fedsim.defenses.randomized_response import RandomizedResponse, RRWithPrior
from fedsim.errors import UserError
from fedsim.privacy.audit_bound import ranked_guesses
from fedsim.privacy.claims import PrivacyClaim
from fedsim.protocol import LabelTransform

KEYS = {"formal_epsilon", "formal_delta", "empirical_epsilon", "confidence", "canaries", "guesses", "correct",
        "attack", "verdict"}
AUDITS = 200


def exceed_limit(audits: int, level: float = 0.05) -> int:
    """Most exceedances a correct mechanism shows in `audits` audits but with probability 1e-3."""
    return int(binom.ppf(1 - 1e-3, audits, level))


class NoiselessButClaimsOne(LabelTransform):
    """Test-only broken defence: releases the labels unchanged but claims 1-label-DP."""

    name = "broken"

    def privacy(self) -> PrivacyClaim:
        return PrivacyClaim("broken", 1.0, 0.0, "1-label-DP (false: no noise is added)")


def laplace(eps: float) -> LaplaceLabels:
    return LaplaceLabels(eps, None, 0.0, 1.0, 0.0)


@pytest.mark.parametrize("name,make,task,eps", [
    ("laplace", laplace, "regression", 1.0),
    ("laplace", laplace, "regression", 2.0),
    ("rr", RandomizedResponse, "binary", 1.0),
    ("rr", RandomizedResponse, "binary", 2.0),
])
def test_a_correct_mechanism_is_rejected_at_most_as_often_as_the_confidence_allows(name, make, task, eps):
    """200 audits of m = 1000 canaries: eps_emp > eps in at most ~5% of them (binomial margin), and the audit
    is not vacuous (mean eps_emp >= 0.7 eps; the exact distinguisher reaches about 0.85 eps at its planned k)."""
    out = [audit_label_mechanism(make(eps), task, (0.0, 1.0), 1000, 0.95, seed=s) for s in range(AUDITS)]
    empirical = np.array([o["empirical_epsilon"] for o in out])
    assert (empirical > eps).sum() <= exceed_limit(AUDITS)
    assert sum(o["verdict"] == "violation" for o in out) <= exceed_limit(AUDITS)
    assert empirical.mean() >= 0.7 * eps
    assert set(out[0]) >= KEYS and out[0]["formal_epsilon"] == eps
    law = IdealLaw(name if name == "laplace" else "rr")
    assert out[0]["guesses"] == planned_guesses(law, "dp", eps, 0.0, 1000, 0.95)  # the declared law's plan


def test_gaussian_labels_are_audited_at_their_delta():
    out = [audit_label_mechanism(GaussianLabels(1.0, 1e-5, 0.0, 1.0, 0.0), "regression", (0.0, 1.0), 1000,
                                 seed=s) for s in range(50)]
    assert out[0]["formal_delta"] == 1e-5
    assert sum(o["verdict"] == "violation" for o in out) <= exceed_limit(50)
    assert max(o["empirical_epsilon"] for o in out) > 0  # the Gaussian mechanism leaks, the audit sees some


def test_a_noiseless_release_that_claims_epsilon_one_is_a_violation():
    out = audit_label_mechanism(NoiselessButClaimsOne(), "regression", (0.0, 1.0), 1000)
    assert out["verdict"] == "violation"
    assert out["correct"] == out["guesses"] == 500 and out["empirical_epsilon"] > 5


class HalfNoiseLaplace(LaplaceLabels):
    """Test-only bug: the sensitivity is halved, so the noise is that of 2 eps while eps is claimed."""

    def apply(self, y, task, rng):
        released = super().apply(y, task, rng)
        return y + (released - y) / 2


class NoiseDrawnOnce(LaplaceLabels):
    """Test-only bug: one Laplace draw shared by every label instead of one per label."""

    def apply(self, y, task, rng):
        released = super().apply(y[:1], task, rng)
        return y + (released[0] - y[0])


def test_a_mechanism_that_releases_during_training_is_not_audited_alone():
    """rr_with_prior's stage-2 labels come from the trained model: `apply` alone holds placeholders for them."""
    with pytest.raises(UserError, match="^rr_with_prior releases part of its labels during training, .*"
                                        "audit it with `fedsim audit train`"):
        audit_label_mechanism(RRWithPrior(1.0, 0.7, 0.3), "binary", (0.0, 1.0), 100)


@pytest.mark.parametrize("broken", [HalfNoiseLaplace, NoiseDrawnOnce])
def test_implementation_bugs_are_found(broken):
    out = [audit_label_mechanism(broken(1.0, None, 0.0, 1.0, 0.0), "regression", (0.0, 1.0), 1000, seed=s)
           for s in range(20)]
    assert sum(o["verdict"] == "violation" for o in out) >= 18


def test_bonferroni_over_several_k_stays_valid_for_a_correct_mechanism():
    out = [audit_label_mechanism(laplace(1.0), "regression", (0.0, 1.0), 1000, seed=s,
                                 guesses=(100, 250, 500, 1000)) for s in range(AUDITS)]
    assert sum(o["empirical_epsilon"] > 1.0 for o in out) <= exceed_limit(AUDITS)


def test_ranked_guesses_split_at_the_middle_rank():
    guess, confidence = ranked_guesses(np.array([5.0, -1.0, 3.0, 0.0]))
    assert guess.tolist() == [1, 0, 1, 0]
    assert confidence.tolist() == [1.5, 1.5, 0.5, 0.5]


# ---- private AUC ----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def scored():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 400)
    return np.clip(0.3 * labels + rng.uniform(0, 0.7, 400), 0, 1), labels


@pytest.mark.parametrize("method,clients", [("hist", 1), ("hist", 3), ("rr", 1), ("naive_rr", 2)])
def test_auc_releases_pass_their_audit(scored, method, clients):
    out = [audit_auc(method, *scored, 1.0, clients=clients, canaries=500, seed=s) for s in range(60)]
    assert set(out[0]) >= KEYS
    assert sum(o["empirical_epsilon"] > 1.0 for o in out) <= exceed_limit(60)
    assert np.mean([o["empirical_epsilon"] for o in out]) >= 0.5  # a canary alone in its bucket: tight-ish


def test_hist_gauss_is_audited_at_its_delta(scored):
    out = audit_auc("hist_gauss", *scored, 1.0, canaries=500)
    assert out["formal_delta"] == 1e-6 and out["verdict"] == "consistent"


def test_dpauc_never_exceeds_the_tight_two_k_epsilon(scored):
    """K = 4 thresholds at eps = 16 (paper's accounting): the tight eps is 8; the audit finds a large share
    of it (one canary per release, likelihood-ratio statistic) but never more, and never the paper's 16."""
    out = [audit_auc("dpauc", *scored, 16.0, thresholds=4, canaries=300, seed=s) for s in range(10)]
    tight = out[0]["tight_epsilon"]
    assert tight == 8.0 and out[0]["formal_epsilon"] == 16.0
    empirical = [o["empirical_epsilon"] for o in out]
    assert max(empirical) < tight
    assert np.mean(empirical) > 0.3 * tight


@pytest.mark.parametrize("method", ["hist", "hist_gauss"])
def test_secure_aggregation_releases_pass_their_audit(scored, method):
    """The server's sum over 10 clients carries one central noise: audited at the claim, never above it
    more often than the confidence allows, and not vacuous (the canaries are seen through the sum)."""
    out = [audit_auc(method, *scored, 2.0, clients=10, secure_aggregation=True, canaries=500, seed=s)
           for s in range(30)]
    assert sum(o["empirical_epsilon"] > 2.0 for o in out) <= exceed_limit(30)
    assert np.mean([o["empirical_epsilon"] for o in out]) >= 0.5 * (2.0 if method == "hist" else 1.0)


def test_scalar_laplace_passes_its_audit_and_a_halved_noise_is_caught(scored, monkeypatch):
    out = [audit_auc("scalar_laplace", *scored, 1.0, canaries=500, seed=s) for s in range(30)]
    assert sum(o["verdict"] == "violation" for o in out) <= exceed_limit(30)
    assert np.mean([o["empirical_epsilon"] for o in out]) >= 0.3
    from fedsim.evaluation import scalar

    real = scalar.scalar_release
    monkeypatch.setattr(scalar, "scalar_release", lambda stats, eps, share, rng: real(stats, 2 * eps, share, rng))
    broken = [audit_auc("scalar_laplace", *scored, 1.0, canaries=500, seed=s)["verdict"] for s in range(5)]
    assert broken.count("violation") >= 4


def test_auc_audit_bad_inputs(scored):
    with pytest.raises(UserError, match="nothing to audit"):
        audit_auc("exact", *scored, None)
    with pytest.raises(UserError, match="finite --epsilon"):
        audit_auc("hist", *scored, float("inf"))
    with pytest.raises(UserError, match="confidence"):
        audit_auc("hist", *scored, 1.0, confidence=1.0)


# ---- training -------------------------------------------------------------------------------------------

FAST_ATTACK = {"min_steps": 100, "init_steps": 50}


def test_training_audit_end_to_end_small():
    config = TrainConfig(dataset="synthetic_regression", rows=600, epochs=2, label_defense="laplace", epsilon=1.0,
                         defense_params={"low": 0.0, "high": 30.0})
    out = audit_training(config, canaries=100, attack_params=FAST_ATTACK)
    assert set(out) >= KEYS | {"test"}
    # laplace declares its law: the black-box attack reads back its released labels, so the guess count is
    # planned from the claim (not half the canaries)
    planned = planned_guesses(IdealLaw("laplace"), "dp", 1.0, 0.0, 100, 0.95)
    assert out["attack"] == "residual" and out["canaries"] == 100 and out["guesses"] == planned != 50
    assert out["canary_values"] == [0.0, 30.0]
    assert out["attack_params"] == {"epochs": "all", **FAST_ATTACK}  # the audit reads every epoch by default
    assert audit_training(config, canaries=100, attack_params={**FAST_ATTACK, "epochs": "last"}
                          )["attack_params"]["epochs"] == "last"  # the user's parameter wins
    assert out["formal_epsilon"] == 1.0 and out["verdict"] in ("consistent", "violation")
    assert out["empirical_epsilon"] <= 1.0 or out["verdict"] == "violation"
    assert "r2" in out["test"]


def test_training_audit_without_defence_is_a_positive_control():
    config = TrainConfig(dataset="synthetic_ctr", rows=1000, epochs=2)
    out = audit_training(config, canaries=200)
    assert out["attack"] == "direction_scoring" and out["verdict"] == "no formal claim"
    assert out["formal_epsilon"] is None and out["empirical_epsilon"] > 3


def test_training_audit_bad_inputs():
    regression = TrainConfig(dataset="synthetic_regression", rows=200, epochs=1, label_defense="laplace",
                             epsilon=1.0, defense_params={"low": 0.0, "high": 30.0})
    with pytest.raises(UserError, match="canaries"):
        audit_training(regression, canaries=1000)
    with pytest.raises(UserError, match="outside the defence's public clip range"):
        audit_training(regression, canaries=20, values=(-5.0, 30.0))
    with pytest.raises(UserError, match="applies to binary"):
        audit_training(regression, canaries=20, attack="norm_scoring")
    with pytest.raises(UserError, match="confidence"):
        audit_training(regression, canaries=20, confidence=0.0)


@pytest.mark.slow
def test_training_audit_finds_a_label_defence_that_adds_no_noise(monkeypatch):
    from fedsim.registry import LABEL_DEFENSES

    class Noiseless(LaplaceLabels):
        name = "test_noiseless"

        def apply(self, y, task, rng):
            super().apply(y, task, rng)  # records the claim
            return np.asarray(y, dtype=np.float64)

    monkeypatch.setitem(LABEL_DEFENSES._items, "test_noiseless", Noiseless)
    config = TrainConfig(dataset="synthetic_regression", rows=600, epochs=2, label_defense="test_noiseless",
                         epsilon=1.0, defense_params={"low": 0.0, "high": 30.0})
    out = audit_training(config, canaries=100, attack_params=FAST_ATTACK)
    assert out["formal_epsilon"] == 1.0 and out["verdict"] == "violation"


@pytest.mark.slow
@pytest.mark.parametrize("eps", [2.0])
def test_training_audit_of_laplace_is_tight(eps):
    config = TrainConfig(dataset="synthetic_regression", rows=5000, epochs=5, label_defense="laplace", epsilon=eps,
                         defense_params={"low": 0.0, "high": 30.0})
    out = audit_training(config, canaries=1000)
    assert out["empirical_epsilon"] >= 0.6 * eps


@pytest.mark.slow
def test_training_audit_of_rr_is_tight():
    out = audit_training(TrainConfig(dataset="synthetic_ctr", rows=5000, epochs=5, label_defense="rr", epsilon=2.0,
                                     seed=1), canaries=1000, seed=1)
    assert out["empirical_epsilon"] >= 1.2 and out["verdict"] == "consistent"


def test_multiclass_audit_positive_control_and_bad_canary_classes():
    """Multiclass canaries take two public classes; without a defence the audit finds a large epsilon."""
    from fedsim.audit import audit_training
    from fedsim.config import TrainConfig
    from fedsim.errors import UserError

    config = TrainConfig(dataset="synthetic_multiclass", rows=1500, epochs=3, seed=0)
    report = audit_training(config, canaries=300, seed=0)
    assert report["verdict"] == "no formal claim" and report["canary_values"] == [0.0, 1.0]
    assert report["correct"] >= 0.9 * report["guesses"] and report["empirical_epsilon"] > 2
    with pytest.raises(UserError, match="two distinct class indices"):
        audit_training(config, canaries=300, seed=0, values=(0.0, 9.0))
