"""The one-run audit bound (fedsim.privacy.audit_bound): known values, monotonicity, edge cases, Bonferroni."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import binom

from fedsim.errors import UserError
from fedsim.privacy.audit_bound import (
    AuditBound,
    audit_guesses,
    correct_among_top,
    epsilon_lower_bound,
    fixed_guesses,
    p_value,
)


def paper_loop_p_value(m: int, r: int, v: int, eps: float, delta: float) -> float:
    """The p-value summed term by term from point masses, as the paper's Appendix D procedure does."""
    q = 1 / (1 + math.exp(-eps))
    beta = binom.sf(v - 1, r, q)
    alpha, total = 0.0, 0.0
    for i in range(1, v + 1):
        total += binom.pmf(v - i, r, q)
        alpha = max(alpha, total / i)
    return min(beta + alpha * delta * 2 * m, 1.0)


@pytest.mark.parametrize("r", [10, 500, 1000])
def test_all_correct_has_a_closed_form(r):
    # W ~ Binomial(r, q) all right with probability q^r: the bound solves q^r = beta
    p = 0.05 ** (1 / r)
    assert epsilon_lower_bound(1000, r, r, 0.95) == pytest.approx(math.log(p / (1 - p)), abs=1e-7)


def test_too_few_guesses_prove_nothing():
    assert epsilon_lower_bound(1000, 4, 4, 0.95) == 0.0  # 0.5^4 > 0.05: even a perfect record is chance
    assert epsilon_lower_bound(1000, 5, 5, 0.95) > 0.0  # 0.5^5 < 0.05


def test_no_defence_positive_control_exceeds_four_with_500_guesses():
    assert epsilon_lower_bound(1000, 500, 500, 0.95) > 5.0


@pytest.mark.parametrize("m,r,v,eps,delta", [(1000, 500, 400, 1.0, 1e-5), (1000, 500, 450, 2.0, 1e-3),
                                             (200, 100, 70, 0.5, 1e-2), (50, 50, 50, 3.0, 1e-4)])
def test_delta_p_value_matches_the_papers_term_by_term_sum(m, r, v, eps, delta):
    assert p_value(m, r, v, eps, delta) == pytest.approx(paper_loop_p_value(m, r, v, eps, delta), rel=1e-9)


def test_p_value_is_a_binomial_tail_without_delta():
    q = 1 / (1 + math.exp(-1.5))
    assert p_value(1000, 300, 240, 1.5) == pytest.approx(binom.sf(239, 300, q), rel=1e-12)


def test_p_value_grows_with_epsilon_and_falls_with_correct_guesses():
    eps = np.linspace(0, 6, 25)
    values = [p_value(1000, 500, 420, e) for e in eps]
    assert np.all(np.diff(values) >= 0)
    assert p_value(1000, 500, 430, 1.0) < p_value(1000, 500, 420, 1.0)


def test_bound_is_monotone_in_correct_guesses_confidence_and_delta():
    bounds = [epsilon_lower_bound(1000, 500, w, 0.95) for w in range(300, 501, 20)]
    assert np.all(np.diff(bounds) > 0)
    assert epsilon_lower_bound(1000, 500, 420, 0.99) < epsilon_lower_bound(1000, 500, 420, 0.95)
    assert epsilon_lower_bound(1000, 500, 420, 0.95, 1e-3) < epsilon_lower_bound(1000, 500, 420, 0.95)


def test_the_bound_is_the_boundary_of_rejection():
    eps = epsilon_lower_bound(1000, 500, 420, 0.95)
    assert p_value(1000, 500, 420, eps - 1e-4) <= 0.05 < p_value(1000, 500, 420, eps + 1e-4)


@pytest.mark.parametrize("w", [0, 100, 250, 268])
def test_chance_level_guessing_gives_zero(w):
    assert epsilon_lower_bound(1000, 500, w, 0.95) == 0.0


def test_no_guess_gives_zero_and_bad_inputs_are_one_line_errors():
    assert epsilon_lower_bound(10, 0, 0, 0.95) == 0.0
    for confidence in (0.0, 1.0, -0.5, 1.5):
        with pytest.raises(UserError, match="confidence"):
            epsilon_lower_bound(10, 5, 5, confidence)
    with pytest.raises(UserError):
        p_value(10, 5, 6, 1.0)
    with pytest.raises(UserError):
        fixed_guesses(10, 0.0)


def test_top_k_counts_the_most_confident_and_breaks_ties_by_order():
    truth = np.array([1, 0, 1, 1, 0])
    guess = np.array([1, 1, 0, 1, 0])
    confidence = np.array([3.0, 2.0, 2.0, 0.5, 5.0])
    assert correct_among_top(truth, guess, confidence, 1) == 1  # canary 4
    assert correct_among_top(truth, guess, confidence, 3) == 2  # 4, 0, then 1 (first of the tie): wrong
    assert correct_among_top(truth, guess, confidence, 5) == 3


def simulated_guesses(seed: int, m: int = 1000, eps: float = 1.0):
    """Exact Laplace release of each canary's bit at true epsilon `eps`: guesses and confidences."""
    rng = np.random.default_rng(seed)
    bits = rng.integers(0, 2, m)
    released = bits + rng.laplace(0.0, 1.0 / eps, m)
    return bits, (released > 0.5).astype(int), np.abs(released - 0.5)


def test_bonferroni_tests_each_k_at_beta_over_their_number():
    bits, guess, conf = simulated_guesses(3)
    ks = (100, 250, 500, 1000)
    result = audit_guesses(bits, guess, conf, 0.95, guesses=ks)
    corrected = [epsilon_lower_bound(1000, k, correct_among_top(bits, guess, conf, k), 1 - 0.05 / 4) for k in ks]
    uncorrected = [epsilon_lower_bound(1000, k, correct_among_top(bits, guess, conf, k), 0.95) for k in ks]
    assert result.epsilon == pytest.approx(max(corrected))
    assert result.epsilon < max(uncorrected)  # the best of several k at level beta each is not what it reports
    assert result.tried == ks and result.guesses in ks


def test_default_is_one_k_fixed_in_advance():
    bits, guess, conf = simulated_guesses(4)
    result = audit_guesses(bits, guess, conf, 0.95)
    k = fixed_guesses(1000)
    assert result.tried == (k,) and result.guesses == k == 500
    assert result.epsilon == pytest.approx(epsilon_lower_bound(1000, k, correct_among_top(bits, guess, conf, k), 0.95))


def test_bonferroni_keeps_its_level_where_the_uncorrected_best_of_k_does_not():
    """Over 300 simulated exact-Laplace audits at true eps = 1: the corrected best-of-4 exceeds eps at most
    about 5% of the time; the uncorrected best-of-4 exceeds it clearly more often (the pitfall)."""
    ks = (100, 250, 500, 1000)
    corrected, uncorrected = 0, 0
    for seed in range(300):
        bits, guess, conf = simulated_guesses(seed)
        corrected += audit_guesses(bits, guess, conf, 0.95, guesses=ks).epsilon > 1.0
        uncorrected += max(epsilon_lower_bound(1000, k, correct_among_top(bits, guess, conf, k), 0.95)
                           for k in ks) > 1.0
    limit = binom.ppf(1 - 1e-3, 300, 0.05)
    assert corrected <= limit
    assert uncorrected > corrected + 5


def test_rejects_is_a_direct_test_of_the_claim():
    bound = AuditBound(1.5, 1000, 500, 440, 0.95, 0.0, (500,))
    assert bound.rejects(1.0) and not bound.rejects(3.0)
    assert bound.rejects(1.0) == (p_value(1000, 500, 440, 1.0) <= 0.05)
