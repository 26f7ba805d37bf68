"""Distributed integer noise, the secure-aggregation histogram AUC (in process and over SecAgg+)."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
from flwr.app import Context, Message, RecordDict
from scipy import stats

from fedsim.errors import UserError
from fedsim.evaluation.driver import split_clients
from fedsim.evaluation.mann_whitney import bucket_counts, bucketed_auc
from fedsim.evaluation.secure_aggregation import client_counts, run_secure_local, secure_public
from fedsim.privacy.distributed_noise import (
    discrete_laplace_noise,
    polya_difference_epsilon,
    polya_difference_logpmf,
    skellam_delta,
    skellam_epsilon,
    skellam_mu,
    skellam_noise,
)
from fedsim.runtime.flower import auc_secagg_app
from fedsim.runtime.flower.direct import DirectGrid


def summed_shares(noise, clients: int, draws: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.sum([noise.share(draws, rng) for _ in range(clients)], axis=0)


def chi_square_p(values: np.ndarray, pmf) -> float:
    """Goodness of fit of integer draws to `pmf`: one cell per value in the central 99.8%, tails pooled."""
    low, high = np.quantile(values, [0.001, 0.999]).astype(int)
    wide = np.arange(low - 5000, high + 5001)
    mass = pmf(wide)
    mass = mass / mass.sum()
    inner = (wide > low) & (wide < high)
    expected = np.concatenate([[mass[wide <= low].sum()], mass[inner], [mass[wide >= high].sum()]])
    observed = np.concatenate([[np.sum(values <= low)], [np.sum(values == k) for k in wide[inner]],
                               [np.sum(values >= high)]])
    return float(stats.chisquare(observed, expected * values.size).pvalue)


@pytest.mark.parametrize(("epsilon", "clients"), [(1.0, 7), (0.2, 30)])
def test_polya_shares_sum_to_discrete_laplace(epsilon, clients) -> None:
    """M shares NB(1/M) - NB(1/M) add up to the two-sided geometric law with a = e^-eps (chi-square)."""
    noise = discrete_laplace_noise(epsilon, clients)
    values = summed_shares(noise, clients, 100_000, seed=1)
    a = math.exp(-epsilon)
    assert chi_square_p(values, lambda k: (1 - a) / (1 + a) * a ** np.abs(k)) > 1e-3
    assert values.var() == pytest.approx(noise.variance(clients), rel=0.05)
    assert values.dtype == np.int64


def test_skellam_shares_sum_to_skellam() -> None:
    noise = skellam_noise(1.0, 1e-6, 12)
    values = summed_shares(noise, 12, 100_000, seed=2)
    mu = noise.parameter
    assert chi_square_p(values, lambda k: stats.skellam.pmf(k, mu, mu)) > 1e-3
    assert values.var() == pytest.approx(2 * mu, rel=0.05)


def test_polya_difference_pmf_and_epsilon() -> None:
    """At r = 1 the pmf is the discrete Laplace one; below 1 the guarantee is log P(0)/P(1) > eps."""
    a = math.exp(-1.0)
    k = np.arange(6)
    assert np.allclose(np.exp(polya_difference_logpmf(k, 1.0, a)), (1 - a) / (1 + a) * a**k, rtol=1e-9)
    half = polya_difference_logpmf(np.arange(2), 0.5, a)
    assert polya_difference_epsilon(0.5, a) == pytest.approx(half[0] - half[1])
    assert polya_difference_epsilon(0.5, a) > 1.0
    assert polya_difference_epsilon(1.5, a) == pytest.approx(1.0)


def test_skellam_accounting_matches_dp_accounting() -> None:
    """Our hockey-stick sum equals dp-accounting's privacy-loss distribution built from the same pmfs."""
    from dp_accounting.pld import privacy_loss_distribution as pld

    mu = skellam_mu(1.0, 1e-6)
    assert skellam_delta(mu, 1.0) <= 1e-6 < skellam_delta(0.99 * mu, 1.0)
    k = np.arange(-200, 202)
    lower = dict(zip(k.tolist(), stats.skellam.logpmf(k, mu, mu).tolist(), strict=True))
    upper = dict(zip(k.tolist(), stats.skellam.logpmf(k - 1, mu, mu).tolist(), strict=True))
    reference = pld.from_two_probability_mass_functions(lower, upper).get_delta_for_epsilon(1.0)
    assert skellam_delta(mu, 1.0) == pytest.approx(reference, rel=0.01)
    assert skellam_epsilon(mu, 1e-6) == pytest.approx(1.0, abs=1e-6)


def test_dropouts_report_the_guarantee_that_holds() -> None:
    """Shares sized for t: A >= t clients keep eps; A < t clients give the weaker, computed eps."""
    laplace = discrete_laplace_noise(1.0, 8)
    assert laplace.achieved_epsilon(8) == laplace.achieved_epsilon(10) == 1.0
    assert laplace.achieved_epsilon(4) == pytest.approx(polya_difference_epsilon(0.5, math.exp(-1.0)))
    assert "weaker" in laplace.describe(4)
    gauss = skellam_noise(1.0, 1e-6, 8)
    assert gauss.achieved_epsilon(8) == 1.0
    assert gauss.achieved_epsilon(4) == pytest.approx(skellam_epsilon(gauss.parameter / 2, 1e-6))
    assert gauss.achieved_epsilon(4) > 1.2


def scored(n: int = 2000, seed: int = 5) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = (rng.random(n) < 0.3).astype(np.int8)
    return 1 / (1 + np.exp(-(rng.standard_normal(n) + labels))), labels


def test_secure_sum_is_counts_plus_one_noise() -> None:
    """The in-process sum minus the true counts is integer noise; eps = inf gives the noise-free AUC."""
    scores, labels = scored()
    parts = split_clients(scores, 6, "iid", 3)
    noiseless = run_secure_local("hist", scores, labels, parts, math.inf, None, 20, 2, 3)
    public = secure_public("hist", scores, math.inf, None, 20, 6)
    truth = bucketed_auc(bucket_counts(scores[labels == 1], public.edges), bucket_counts(scores, public.edges))
    assert [e.estimate for e in noiseless.estimates] == [truth, truth]
    run = run_secure_local("hist", scores, labels, parts, 1.0, None, 20, 1, 3)
    assert run.info()["achieved_epsilon"] == 1.0 and run.contributors == 6


def test_dropped_client_is_reported() -> None:
    scores, labels = scored()
    parts = split_clients(scores, 6, "iid", 3)
    tolerant = run_secure_local("hist", scores, labels, parts, 1.0, None, 20, 1, 3, min_clients=5,
                                dropped=frozenset({0}))
    assert tolerant.info()["achieved_epsilon"] == 1.0 and tolerant.contributors == 5
    strict = run_secure_local("hist", scores, labels, parts, 1.0, None, 20, 1, 3, dropped=frozenset({0, 1}))
    info = strict.info()
    assert info["contributors"] == 4 and info["achieved_epsilon"] > 1.0 and "weaker" in info["guarantee"]


@pytest.mark.parametrize(("method", "clients", "min_clients", "needle"),
                         [("rr", 4, None, "integer histogram"), ("dpauc", 4, None, "integer histogram"),
                          ("hist", 1, None, "nothing to aggregate"), ("hist", 4, 5, "--min-clients"),
                          ("hist", 4, 0, "--min-clients")])
def test_bad_secure_setups(method, clients, min_clients, needle) -> None:
    scores, _ = scored(100)
    with pytest.raises(UserError, match=needle):
        secure_public(method, scores, 1.0, None, None, clients, min_clients)


class CopyingGrid(DirectGrid):
    """DirectGrid that copies each message's content, as the wire does (SecAgg+'s mod edits it in place)."""

    def push_messages(self, messages):  # noqa: ANN001, ANN201
        return super().push_messages([Message(copy.deepcopy(m.content), m.metadata.dst_node_id,
                                              m.metadata.message_type, group_id=m.metadata.group_id)
                                      for m in messages])


def secagg_over_messages(scores, labels, parts, method, delta, repeats, min_clients, failing=frozenset()):
    grid = CopyingGrid(auc_secagg_app.client_app([(scores[p], labels[p]) for p in parts], failing), len(parts))
    context = Context(run_id=0, node_id=0, node_config={}, state=RecordDict(), run_config={})
    return auc_secagg_app.server_main(grid, context, method, 1.0, delta, None, len(parts), repeats, 7, min_clients)


@pytest.mark.parametrize(("method", "delta"), [("hist", None), ("hist_gauss", 1e-6)])
def test_secagg_plus_equals_in_process(method, delta) -> None:
    """SecAgg+'s messages (workflow + mod, engine-free) give the in-process estimates bit for bit."""
    scores, labels = scored()
    parts = split_clients(scores, 5, "iid", 7)
    over_secagg = secagg_over_messages(scores, labels, parts, method, delta, 2, None)
    local = run_secure_local(method, scores, labels, parts, 1.0, delta, None, 2, 7)
    assert over_secagg.estimates == local.estimates and over_secagg.info() == local.info()
    np.testing.assert_array_equal(over_secagg.first_total, local.first_total)  # what --curves post-processes
    np.testing.assert_array_equal(over_secagg.first_sizes, local.first_sizes)


def test_secagg_plus_dropout_equals_in_process_dropout() -> None:
    """A client failing in the masked-vector stage is unmasked away; the reported guarantee follows."""
    scores, labels = scored()
    parts = split_clients(scores, 5, "iid", 7)
    over_secagg = secagg_over_messages(scores, labels, parts, "hist", None, 1, None, frozenset({3}))
    local = run_secure_local("hist", scores, labels, parts, 1.0, None, None, 1, 7, dropped=frozenset({3}))
    assert over_secagg.estimates == local.estimates and over_secagg.info() == local.info()
    assert over_secagg.info()["achieved_epsilon"] > 1.0


def test_secagg_plus_range_edge(monkeypatch) -> None:
    """Entries of exactly +-C pass through SecAgg+ unchanged and the sum does not wrap; C + 1 is refused
    (that client drops out instead of being clipped)."""
    clients = 3
    c = auc_secagg_app.clipping_range(clients)
    assert 2 * c * clients < 2**31
    wanted = {0: [c, -c, c, 0], 1: [c, -c, c - 1, 5], 2: [c, -c, -c, -7]}
    monkeypatch.setattr(auc_secagg_app, "client_vector",
                        lambda counts, public, rng: np.array(wanted[int(rng.bit_generator.seed_seq.entropy[3])]))
    captured = {}
    monkeypatch.setattr(auc_secagg_app, "secure_estimate",
                        lambda total, sizes, public, contributors: captured.setdefault("total", total))
    scores, labels = scored(400)
    parts = split_clients(scores, clients, "iid", 1)
    secagg_over_messages(scores, labels, parts, "hist", None, 1, None)
    assert captured["total"].tolist() == np.sum(list(wanted.values()), axis=0).tolist()
    wanted[2] = [c + 1, 0, 0, 0]
    captured.clear()
    run = secagg_over_messages(scores, labels, parts, "hist", None, 1, 2)
    assert captured["total"].tolist() == np.sum([wanted[0], wanted[1]], axis=0).tolist()
    assert run.contributors == 2


@pytest.mark.slow
def test_secagg_plus_in_simulation_engine() -> None:
    """The real engine (Ray) runs SecAgg+ and gives the in-process result."""
    scores, labels = scored(1500)
    parts = split_clients(scores, 4, "iid", 9)
    engine = auc_secagg_app.run_secure_flower("hist_gauss", scores, labels, parts, 1.0, 1e-6, None, 2, 9)
    local = run_secure_local("hist_gauss", scores, labels, parts, 1.0, 1e-6, None, 2, 9)
    assert engine.estimates == local.estimates


def test_client_counts_cover_every_bucket() -> None:
    scores, labels = scored(300)
    edges = secure_public("hist", scores, 1.0, None, 7, 2).edges
    counts = client_counts(scores[:10], labels[:10], edges)
    assert counts.sizes.size == edges.size == counts.positives.size and counts.sizes.sum() == 10
