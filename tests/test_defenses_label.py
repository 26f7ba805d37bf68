"""Label mechanisms: laws, keep/flip rates, likelihood-ratio bounds, RR-on-bins' dynamic program."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from fedsim.defenses import LABEL_DEFENSES
from fedsim.defenses.bounds import private_bounds
from fedsim.defenses.label_extension import LabelExtension
from fedsim.defenses.randomized_response import rr_top_k_matrix, rr_with_prior, top_k_size
from fedsim.defenses.rr_on_bins import RROnBins, brute_force, optimal_bins
from fedsim.privacy.mechanisms import max_likelihood_ratio, rr_keep_probability

N = 100_000


def make(name, task="regression", epsilon=1.0, delta=None, **params):
    return LABEL_DEFENSES.get(name).from_config(task, epsilon, delta, params)


def test_laplace_labels_are_clipped_plus_laplace_and_unbiased_inside():
    rng = np.random.default_rng(0)
    y = rng.uniform(-2, 12, N)
    defense = make("laplace", epsilon=2.0, low=0.0, high=10.0)
    out = defense.apply(y, "regression", rng)
    residual = out - np.clip(y, 0, 10)
    assert stats.kstest(residual, stats.laplace(scale=5.0).cdf).pvalue > 0.01
    inside = (y > 0) & (y < 10)
    assert (out[inside] - y[inside]).mean() == pytest.approx(0, abs=5 * 5 * math.sqrt(2) / math.sqrt(inside.sum()))
    claim = defense.privacy()
    assert claim.epsilon == 2.0 and claim.delta == 0.0


def test_gaussian_labels_use_the_analytic_sigma():
    import dp_accounting

    rng = np.random.default_rng(1)
    y = rng.uniform(0, 10, N)
    defense = make("gaussian", epsilon=1.0, delta=1e-5, low=0.0, high=10.0)
    out = defense.apply(y, "regression", rng)
    sigma = 10.0 * dp_accounting.get_sigma_gaussian(1.0, 1e-5)
    assert stats.kstest(out - y, stats.norm(scale=sigma).cdf).pvalue > 0.01
    claim = defense.privacy()
    assert (claim.epsilon, claim.delta) == (1.0, 1e-5)
    assert claim.details["ledger"]["cross_check"]["pld"] == pytest.approx(1.0, abs=1e-3)


def test_private_bounds_spend_a_share_and_are_reported():
    rng = np.random.default_rng(2)
    y = rng.normal(50, 10, 20_000)
    low, high = private_bounds(y, 1.0, rng)
    assert 20 < low < 40 < 60 < high < 80
    defense = make("laplace", epsilon=1.0, bounds_share=0.2)
    defense.apply(y, "regression", rng)
    claim = defense.privacy()
    assert claim.epsilon == pytest.approx(1.0)
    assert claim.details["bounds"]["source"].startswith("private")
    assert [e["mechanism"] for e in claim.details["ledger"]["events"]] == ["exponential", "laplace"]


@pytest.mark.parametrize("seed", range(12))
def test_rr_on_bins_dynamic_program_equals_brute_force(seed):
    rng = np.random.default_rng(seed)
    k = int(rng.integers(2, 9))
    support = np.sort(rng.choice(100, k, replace=False)).astype(float)
    prior, epsilon = rng.random(k) + 0.01, float(rng.choice([0.2, 1.0, 3.0]))
    dp, brute = optimal_bins(support, prior, epsilon), brute_force(support, prior, epsilon)
    assert dp.expected_error == pytest.approx(brute.expected_error, rel=1e-9, abs=1e-12)
    assert np.all(np.diff(dp.bin_of) >= 0)  # monotone map


@pytest.mark.parametrize("epsilon", [0.5, 1.0, 2.0, 4.0])
def test_rr_on_bins_ratio_is_exactly_e_eps_and_error_beats_laplace(epsilon):
    support, prior = np.arange(11.0), np.ones(11)
    plan = optimal_bins(support, prior, epsilon)
    if plan.m > 1:
        assert max_likelihood_ratio(plan.transition_matrix(epsilon)) == pytest.approx(math.exp(epsilon), rel=1e-12)
    laplace_error = 2 * (10.0 / epsilon) ** 2
    assert plan.expected_error < laplace_error
    matrix = plan.transition_matrix(epsilon)  # closed form of the error equals the plan's
    error = np.sum(prior / prior.sum() * (matrix * (plan.values[None, :] - support[:, None]) ** 2).sum(axis=1))
    assert error == pytest.approx(plan.expected_error, rel=1e-9)


def test_rr_on_bins_notes_values():
    """Uniform prior on 0..10: noisy-label MSE 9.55 / 8.41 / 5.66 / 1.82 at eps 0.5 / 1 / 2 / 4 (notes)."""
    got = [optimal_bins(np.arange(11.0), np.ones(11), e).expected_error for e in (0.5, 1, 2, 4)]
    assert got == pytest.approx([9.55, 8.41, 5.66, 1.82], abs=0.01)


def test_rr_on_bins_mechanism_keep_rate_and_outputs():
    rng = np.random.default_rng(3)
    y = rng.uniform(0, 10, N)
    defense = make("rr_on_bins", epsilon=3.0, low=0.0, high=10.0, bins=11, prior_share=0.1)
    assert isinstance(defense, RROnBins)
    out = defense.apply(y, "regression", rng)
    plan = defense.plan
    assert set(np.unique(out)) <= set(plan.values)
    index = np.rint(np.clip(y, 0, 10)).astype(int)
    own = plan.values[plan.bin_of[index]]
    keep = rr_keep_probability(3.0 * 0.9, plan.m)
    assert (out == own).mean() == pytest.approx(keep, abs=0.01)
    claim = defense.privacy()
    assert claim.epsilon == pytest.approx(3.0) and claim.delta == 0.0


def test_rr_on_bins_noisy_label_error_is_below_laplace_on_data():
    rng = np.random.default_rng(4)
    y = rng.uniform(0, 10, 20_000)
    for epsilon in (0.5, 1.0, 2.0):
        bins = make("rr_on_bins", epsilon=epsilon, low=0.0, high=10.0).apply(y, "regression", rng)
        lap = make("laplace", epsilon=epsilon, low=0.0, high=10.0).apply(y, "regression", rng)
        assert np.mean((bins - y) ** 2) < np.mean((lap - y) ** 2)


@pytest.mark.parametrize("prior", [[0.7, 0.2, 0.1], [0.4, 0.35, 0.25], [0.05, 0.05, 0.9]])
@pytest.mark.parametrize("epsilon", [0.3, 1.0, 3.0])
def test_rr_with_prior_likelihood_ratio_and_sampling(prior, epsilon):
    prior = np.array(prior)
    for k in range(1, 4):
        matrix = rr_top_k_matrix(prior, epsilon, k)
        assert np.allclose(matrix.sum(axis=1), 1)
        ratio = max_likelihood_ratio(matrix)
        assert ratio <= math.exp(epsilon) * (1 + 1e-12)
        if k > 1:
            assert ratio == pytest.approx(math.exp(epsilon))
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 3, 60_000)
    out = rr_with_prior(labels, prior, epsilon, rng)
    matrix = rr_top_k_matrix(prior, epsilon, top_k_size(prior, epsilon))
    for c in range(3):
        freq = np.bincount(out[labels == c], minlength=3) / (labels == c).sum()
        assert freq == pytest.approx(matrix[c], abs=0.015)


def test_rr_defences_on_binary_labels():
    rng = np.random.default_rng(6)
    y = (rng.random(N) < 0.3).astype(float)
    out = make("rr", "binary", epsilon=1.0).apply(y, "binary", rng)
    assert (out != y).mean() == pytest.approx(1 / (1 + math.e), abs=0.005)
    defense = make("rr_with_prior", "binary", epsilon=2.0)
    out = defense.apply(y, "binary", rng)
    assert set(np.unique(out)) <= {0, 1}
    assert defense.privacy().epsilon == 2.0


def test_label_extension_targets():
    rng = np.random.default_rng(7)
    y = rng.normal(size=500)
    for variant in ("rle", "mle"):
        ext = LabelExtension.from_config("regression", None, None, {"dimension": 3, "variant": variant})
        out = ext.apply(y, "regression", rng)
        assert out.shape == (500, 3) and np.array_equal(out[:, 0], y) and ext.prediction_column == 0
        assert np.allclose(np.sort(out[:, 1]), np.sort(y)) == (variant == "rle")
        assert ext.privacy().epsilon is None


@pytest.mark.parametrize("epsilon", [0.5, 1.0, 4.0])
def test_unbiased_opt_is_unbiased_private_and_between_rr_on_bins_and_laplace(epsilon):
    from fedsim.defenses.unbiased import optimal_unbiased, output_grid

    support, prior = np.arange(11.0), np.full(11, 1 / 11)
    outputs = output_grid(0, 10, epsilon)
    matrix = optimal_unbiased(support, prior, outputs, epsilon)
    assert np.allclose(matrix @ outputs, support, atol=1e-9)
    used = matrix.max(axis=0) > 0
    assert max_likelihood_ratio(matrix[:, used]) <= math.exp(epsilon)
    assert used.sum() <= 2 * len(support)  # the paper: an optimum with at most 2|Y| outputs
    error = np.sum(prior[:, None] * matrix * (outputs[None, :] - support[:, None]) ** 2)
    assert optimal_bins(support, prior, epsilon).expected_error < error < 2 * (10 / epsilon) ** 2
    # notes' values (uniform prior on 0..10): 400 / 98 / 2.74 at eps 0.5 / 1 / 4
    assert error == pytest.approx({0.5: 400, 1.0: 98, 4.0: 2.74}[epsilon], rel=0.02)


def test_unbiased_opt_release_is_unbiased_for_the_clipped_label():
    rng = np.random.default_rng(8)
    y = rng.uniform(-1, 11, 200_000)
    defense = make("unbiased_opt", epsilon=2.0, low=0.0, high=10.0, bins=11, prior_share=0.1)
    out = defense.apply(y, "regression", rng)
    residual = out - np.clip(y, 0, 10)
    assert abs(residual.mean()) < 5 * residual.std() / math.sqrt(len(y))
    claim = defense.privacy()
    assert claim.epsilon == pytest.approx(2.0) and claim.delta == 0.0
