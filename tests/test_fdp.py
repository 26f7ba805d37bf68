"""The f-DP one-run analysis (fedsim.privacy.fdp): known values, exact inverses, and its false-alarm rate."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import binom

from fedsim.errors import UserError
from fedsim.experiments.report_leakage import violation_summary
from fedsim.privacy.audit_bound import correct_among_top, epsilon_lower_bound, ranked_guesses
from fedsim.privacy.fdp import (
    binomial_excess,
    dp_tradeoff,
    fdp_lower_bound,
    gdp_epsilon,
    gdp_mu,
    rejects,
    rr_composition_tradeoff,
)

M, RUNS = 1000, 200
LIMIT = int(binom.isf(0.001, RUNS, 0.05))  # rejections of a correct claim: P[more] < 0.001 at level 0.05


@pytest.mark.parametrize("eps,low,high", [(1.0, 0.8, 0.95), (2.0, 1.75, 1.95), (4.0, 3.4, 3.8)])
def test_randomised_response_at_its_expected_accuracy_audits_near_eps(eps, low, high):
    correct = round(M * math.exp(eps) / (1 + math.exp(eps)))  # audit-ceilings.txt, table C (K = 2): 0.85 at eps 1
    assert low <= fdp_lower_bound("dp", M, M, correct, 0.95) <= high


def test_gdp_conversions_are_inverse_and_known():
    assert gdp_epsilon(1.0, 1e-5) == pytest.approx(4.377, abs=2e-3)  # mu = 1 GDP at delta 1e-5
    for eps in (0.5, 2.0, 8.0):
        assert gdp_epsilon(gdp_mu(eps, 1e-5), 1e-5) == pytest.approx(eps, rel=1e-6)
    with pytest.raises(UserError):
        gdp_epsilon(1.0, 0.0)


def test_gaussian_scores_beat_steinke_with_the_gdp_family():
    rng = np.random.default_rng(0)
    bits = rng.integers(0, 2, M)
    guess, conf = ranked_guesses(gdp_mu(4.0, 1e-5) * bits + rng.standard_normal(M))
    w = correct_among_top(bits, guess, conf, 200)
    assert fdp_lower_bound("gdp", M, 200, w, 0.95, 1e-5) > epsilon_lower_bound(M, 200, w, 0.95, 1e-5) > 0.5


def test_the_composed_randomised_response_curve():
    """One release is the eps-DP curve itself; s releases at eps / s are eps-DP (basic composition), so their
    curve lies on or above it; the family weakens as eps grows; and it is the exact curve: the Neyman-Pearson
    test that rejects above c votes has the type I and II errors of the binomial vote counts."""
    grid = np.linspace(0.0, 1.0, 201)
    for eps in (0.5, 1.0, 3.0):
        assert np.allclose([rr_composition_tradeoff(eps, 1)(a) for a in grid], [dp_tradeoff(eps)(a) for a in grid])
        composed = np.array([rr_composition_tradeoff(eps, 5)(a) for a in grid])
        assert np.all(composed >= np.array([dp_tradeoff(eps)(a) for a in grid]) - 1e-12)
        assert np.all(np.diff(composed) <= 1e-12) and composed[0] == pytest.approx(1.0) and composed[-1] == 0.0
        weaker = np.array([rr_composition_tradeoff(eps + 0.5, 5)(a) for a in grid])
        assert np.all(weaker <= composed + 1e-12) and np.any(weaker < composed - 1e-3)
    p = math.exp(0.4) / (1 + math.exp(0.4))  # eps 2 over 5 releases; reject for >= 4 votes
    alpha, beta = binom.sf(3, 5, 1 - p), binom.cdf(3, 5, p)
    assert rr_composition_tradeoff(2.0, 5)(alpha) == pytest.approx(beta, abs=1e-12)


def test_the_composed_family_audits_a_per_epoch_rr_higher_than_the_dp_curve():
    """The same guesses on 5 releases of RR at 1/5 each: the family of that composition rejects more (its curve
    is the exact one), the (eps, delta)-DP curve less (it must also hold for one release at eps)."""
    rng = np.random.default_rng(3)
    bits = rng.integers(0, 2, M)
    votes = np.where(rng.random((M, 5)) < math.exp(0.2) / (1 + math.exp(0.2)), 1, -1) * (2 * bits[:, None] - 1)
    guess, conf = ranked_guesses(votes.sum(axis=1).astype(float))
    w = correct_among_top(bits, guess, conf, 300)
    assert fdp_lower_bound("rr:5", M, 300, w, 0.95) > fdp_lower_bound("dp", M, 300, w, 0.95) > 0.2
    with pytest.raises(UserError, match="for binary canaries"):  # k-ary RR's pairwise curve is another one
        fdp_lower_bound("rr:5", M, 300, w, 0.95, k=3)
    with pytest.raises(UserError, match="f-DP family must be one of"):
        rejects("rr:0", 1.0, 0.0, M, 300, w, 0.95)


@pytest.mark.parametrize("family,eps,delta", [("dp", 1.0, 0.0), ("gdp", 2.0, 1e-5), ("rr:5", 2.0, 0.0)])
def test_a_correct_claim_is_rejected_about_as_often_as_the_confidence_allows(family, eps, delta):
    rng = np.random.default_rng(1)
    rejected = 0
    for _ in range(RUNS):
        bits = rng.integers(0, 2, M)
        if family == "dp":  # randomised response at eps: the worst eps-DP mechanism
            score = np.where(rng.random(M) < math.exp(eps) / (1 + math.exp(eps)), bits, 1 - bits).astype(float)
        elif family == "rr:5":  # five releases of RR at eps / 5, counted as votes: the exact test
            keep = rng.random((M, 5)) < math.exp(eps / 5) / (1 + math.exp(eps / 5))
            score = np.where(keep, 1, -1).sum(axis=1) * (2.0 * bits - 1)
        else:  # the Gaussian mechanism calibrated to (eps, delta)
            score = gdp_mu(eps, delta) * bits + rng.standard_normal(M)
        guess, conf = ranked_guesses(score)
        k = 200
        rejected += rejects(family, eps, delta, M, k, correct_among_top(bits, guess, conf, k), 0.95)
    assert rejected <= LIMIT


def test_grids_report_violations_against_their_binomial_expectation():
    assert binomial_excess(1, 20, 0.95)["expected"] == pytest.approx(1.0)
    assert "P[>= 1] = 0.64" in violation_summary(1, 20, 0.95) and "excess" not in violation_summary(1, 20, 0.95)
    assert violation_summary(6, 20, 0.95).endswith("an excess, look for a defect")
