"""`rr_with_prior` as LP-2ST (Ghazi et al. 2021): RRTop-k* against a per-example prior, the two stages on
disjoint rows, each label randomised once, stage-2 rows silent (zero cut gradient) until their release."""

from __future__ import annotations

import numpy as np
import pytest
from fedsim_fixtures import small_config

from fedsim.assembly import build_label_party, load_dataset, make_plan, resolve_defenses, resolve_model
from fedsim.defenses import LABEL_DEFENSES
from fedsim.defenses.randomized_response import RRWithPrior, rr_top_k_matrix, rr_top_k_rows, rr_with_prior
from fedsim.errors import UserError
from fedsim.privacy.mechanisms import rr_keep_probability
from fedsim.protocol import TrainingPlan
from fedsim.training import train

K = 5


def make(epsilon: float = 1.0, **params) -> RRWithPrior:
    return LABEL_DEFENSES.get("rr_with_prior").from_config("multiclass", epsilon, None, params)


def test_per_example_rows_equal_the_matrix_rows():
    rng = np.random.default_rng(0)
    priors = rng.dirichlet(np.full(K, 0.5), 300)
    priors[:3] = 1 / K  # ties: the same stable order as rr_top_k_matrix
    labels = rng.integers(0, K, 300)
    for epsilon in (0.3, 1.0, 3.0):
        expected = np.stack([rr_top_k_matrix(p, epsilon)[y] for p, y in zip(priors, labels, strict=True)])
        np.testing.assert_allclose(rr_top_k_rows(labels, priors, epsilon), expected, atol=1e-12)


def test_a_confident_per_example_prior_keeps_more_labels_than_plain_rr():
    """Each example's prior puts 0.8 on its own (true) class for 80% of the rows, on another class otherwise:
    RRTop-k* keeps far more true labels than k-ary RR at the same epsilon, and follows each row's prior."""
    rng = np.random.default_rng(1)
    n, epsilon = 20_000, 1.0
    labels = rng.integers(0, K, n)
    top = np.where(rng.random(n) < 0.8, labels, (labels + rng.integers(1, K, n)) % K)
    priors = np.full((n, K), 0.05)
    priors[np.arange(n), top] = 0.8
    out = rr_with_prior(labels, priors, epsilon, rng)
    assert np.mean(out == labels) > rr_keep_probability(epsilon, K) + 0.2  # 0.8 * P(keep | k*) vs 0.40
    assert np.mean(out == top) > 0.75  # the output follows each row's own top class


def test_stage_two_labels_depend_on_the_models_probabilities():
    y = np.random.default_rng(2).integers(0, K, 2000).astype(float)
    plan = TrainingPlan("multiclass", len(y), 100, 4, 20, 2, (4, 4), K)
    outs = []
    for favourite in (0, 3):
        defense = make(2.0)
        defense.apply(y, "multiclass", np.random.default_rng(3))
        pending = defense.pending(plan)
        assert pending is not None
        confident = np.full((len(pending.rows), K), 0.01)
        confident[:, favourite] = 0.96
        outs.append(pending.release(confident))
        assert np.mean(outs[-1] == favourite) > 0.9  # k* = 1: the prior's class whatever the label
    assert not np.array_equal(outs[0], outs[1])


def test_stages_are_disjoint_and_every_label_is_randomised_once():
    config = small_config(dataset="synthetic_multiclass", rows=400, epochs=2, label_defense="rr_with_prior",
                          epsilon=2.0, defense_params={"stage1_fraction": 0.4})
    dataset = load_dataset(config)
    config = resolve_model(config, dataset)
    label, gradient = resolve_defenses(config, dataset.task)
    party = build_label_party(config, dataset, label, gradient)
    assert isinstance(label, RRWithPrior)
    pending = party.pending
    assert pending is not None
    stage1 = np.flatnonzero(label.releases == 1)
    np.testing.assert_array_equal(pending.rows, label.stage2_rows)
    assert np.intersect1d(stage1, pending.rows).size == 0
    assert len(stage1) + len(pending.rows) == dataset.n_train
    assert (label.releases[pending.rows] == 0).all()
    steps = make_plan(config, dataset).steps_per_epoch
    assert pending.at == divmod(round(0.3 * 2 * steps), steps)  # 30% of the steps by default
    uniform = np.full((len(pending.rows), K), 1 / K)
    pending.release(uniform)
    assert (label.releases == 1).all()
    with pytest.raises(UserError, match="released once"):
        pending.release(uniform)
    claim = label.privacy()
    assert claim.details["stage1_rows"] + claim.details["stage2_rows"] == dataset.n_train
    events = claim.details["ledger"]["events"]
    assert len(events) == 1 and events[0]["count"] == 1 and events[0]["mechanism"] == "randomized_response"
    assert claim.epsilon == 2.0


def test_training_releases_each_stage_two_label_once_and_silences_it_before():
    """In a run: every label randomised exactly once; before the switch the stage-2 rows' cut gradients are
    exactly 0 (their labels are not used), after it they train like the others; same seed, same run."""
    config = small_config(dataset="synthetic_multiclass", rows=400, epochs=4, label_defense="rr_with_prior",
                          epsilon=1.0)
    seen = []
    original = RRWithPrior.release

    def release(self, probabilities):
        seen.append(self)
        return original(self, probabilities)

    RRWithPrior.release = release  # type: ignore[method-assign]
    try:
        result, again = train(config), train(config)
    finally:
        RRWithPrior.release = original  # type: ignore[method-assign]
    assert len(seen) == 2 and all((d.releases == 1).all() for d in seen)
    assert result.metrics == again.metrics
    transcript = result.transcripts[0]
    switch = result.privacy.details["stage2_at_step"]
    steps_per_epoch = len(np.unique(transcript.epochs[0].steps))
    dataset = load_dataset(config)
    held = set(dataset.train_ids[seen[0].stage2_rows].tolist())
    silenced = 0
    for epoch_number, epoch in zip(transcript.epoch_numbers, transcript.epochs, strict=True):
        step = epoch_number * steps_per_epoch + epoch.steps
        is_held = np.array([i in held for i in epoch.batch_ids.tolist()])
        norms = np.abs(epoch.gradients).sum(axis=1)
        before = step < switch
        assert (norms[before & is_held] == 0).all()
        silenced += int((before & is_held).sum())
        assert (norms[before & ~is_held] > 0).all()
        assert (norms[~before] > 0).all()
    assert silenced >= len(held)  # stage 1: the first 30% of 4 epochs
    for a, b in zip(result.transcripts, again.transcripts, strict=True):
        np.testing.assert_array_equal(a.epochs[-1].gradients, b.epochs[-1].gradients)


def test_parameters_refused_in_one_line():
    with pytest.raises(UserError, match="stage1_epochs_fraction") as err:
        make(1.0, stage1_epochs_fraction=1.5)
    assert "\n" not in str(err.value)
    defense = make(1.0)
    defense.apply(np.arange(10.0) % K, "multiclass", np.random.default_rng(0))
    with pytest.raises(UserError, match="needs >= 2 training steps"):
        defense.pending(TrainingPlan("multiclass", 10, 10, 1, 1, 2, (4, 4), K))
