"""Guess counts planned from the claim (`fedsim.audit.ideal`): public facts in, one k out, chosen for the ideal
observer's expected bound, never from an audit's scores."""

from __future__ import annotations

import numpy as np
import pytest

from fedsim.audit.ideal import IdealLaw, ideal_statistic, law_of, planned_guesses
from fedsim.audit.training import audit_training
from fedsim.config import TrainConfig
from fedsim.defenses.grad_perturb import GradientPerturbation
from fedsim.defenses.label_noise import LaplaceLabels
from fedsim.privacy.fdp import fdp_lower_bound

M, CONFIDENCE, DELTA = 1000, 0.95, 1e-5
GAUSSIAN = IdealLaw("gaussian")


def ideal_mean_bound(k: int, epsilon: float, draws: int = 20) -> float:
    """The ideal observer's f-DP bound at k guesses, mean over seeded audits of its own (independent of the plan's
    draws): what the plan is meant to maximise."""
    rng = np.random.default_rng(7)
    bounds = []
    for _ in range(draws):
        bits = rng.integers(0, 2, M)
        stat = ideal_statistic(GAUSSIAN, epsilon, DELTA, bits, rng)
        rank = np.empty(M)
        rank[np.argsort(stat, kind="stable")] = np.arange(M)
        order = np.argsort(-np.abs(rank - (M - 1) / 2), kind="stable")[:k]
        right = int(np.sum((rank[order] >= M / 2) == bits[order]))
        bounds.append(fdp_lower_bound("gdp", M, k, right, CONFIDENCE, DELTA))
    return float(np.mean(bounds))


def test_the_plan_is_a_deterministic_function_of_the_claim_and_follows_it():
    planned = [planned_guesses(GAUSSIAN, "gdp", eps, DELTA, M, CONFIDENCE) for eps in (1.0, 4.0)]
    planned_guesses.cache_clear()
    assert planned == [planned_guesses(GAUSSIAN, "gdp", eps, DELTA, M, CONFIDENCE) for eps in (1.0, 4.0)]
    assert planned[0] > planned[1]  # weak evidence per canary: guess on more of them
    assert planned_guesses(IdealLaw("rr"), "dp", 1.0, 0.0, M, CONFIDENCE) == M  # RR: all equally confident


@pytest.mark.parametrize("epsilon", [1.0, 4.0])
def test_the_planned_count_beats_the_old_fixed_fractions_for_the_ideal_observer(epsilon):
    """Measured on draws the plan never saw: the planned k certifies at least as much as 15% and 50% of the
    canaries (the fixed rules before it), up to a small simulation tolerance."""
    k = planned_guesses(GAUSSIAN, "gdp", epsilon, DELTA, M, CONFIDENCE)
    planned = ideal_mean_bound(k, epsilon)
    assert planned >= max(ideal_mean_bound(150, epsilon), ideal_mean_bound(500, epsilon)) - 0.03 * epsilon


def test_defences_name_their_own_law():
    assert law_of(GradientPerturbation(2.0), "dp", epochs=5) == IdealLaw("rr", 5)
    assert law_of(LaplaceLabels.__new__(LaplaceLabels), "dp", epochs=5) == IdealLaw("laplace")
    assert law_of(object(), "gdp", epochs=5) == GAUSSIAN and law_of(object(), "dp", epochs=5) == IdealLaw("rr")


def test_white_box_audits_guess_on_the_planned_count():
    config = TrainConfig(dataset="synthetic_ctr", rows=800, epochs=2, gradient_defense="grad_perturb", epsilon=2.0,
                         seed=0)
    out = audit_training(config, canaries=300, seed=0, auditor="white-box")
    assert out["guesses"] == planned_guesses(IdealLaw("rr", 2), "rr:2", out["formal_epsilon"], 0.0, 300, CONFIDENCE)
