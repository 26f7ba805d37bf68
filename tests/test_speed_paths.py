"""The local runtime's fused step and FedBCD local steps compute what the per-party protocol computes, and every
run reports what it sent (issue 14)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from fedsim_fixtures import small_config
from test_flower import assert_same_run, run_direct

from fedsim.assembly import build_feature_party, build_label_party, load_dataset, make_schedule, resolve_defenses
from fedsim.runtime.local import FusedSteps, run_local
from fedsim.training import train


def _trained(config, fused: bool):
    dataset = load_dataset(config)
    label, gradient = resolve_defenses(config, dataset.task)
    parties = [build_feature_party(config, dataset, k) for k in range(dataset.parties)]
    label_party = build_label_party(config, dataset, label, gradient)
    if fused:
        assert FusedSteps.build(parties, label_party) is not None
    run_local(parties, label_party, make_schedule(config, dataset), fused=fused)
    return [p.model for p in parties] + [label_party.model]


@pytest.mark.parametrize("extra", [
    {},
    {"gradient_defense": "gaussian_noise", "defense_params": {"scale": 0.05}},
    {"local_steps": 3},
    {"local_steps": 2, "gradient_defense": "max_norm", "optimizer": "sgd"},
])
def test_fused_step_equals_per_party_steps(extra):
    """One autograd call + one optimizer over all weights == each party's own backward and optimizer, bit for bit."""
    config = small_config(rows=300, parties=3, epochs=2, **extra)
    for fused, unfused in zip(_trained(config, True), _trained(config, False), strict=True):
        for a, b in zip(fused.parameters(), unfused.parameters(), strict=True):
            torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_fedbcd_matches_the_flower_runtime_and_updates_more_per_exchange():
    config = small_config(rows=200, parties=2, epochs=2, local_steps=3)
    local = train(config)
    assert_same_run(local, run_direct(config))
    plain = train(small_config(rows=200, parties=2, epochs=2))
    # the same exchanges are recorded (one per batch), but the models took three updates per exchange
    assert [e.batch_ids.tolist() for e in local.transcripts[0].epochs] == \
        [e.batch_ids.tolist() for e in plain.transcripts[0].epochs]
    assert not torch.equal(next(local.feature_parties[0].model.parameters()),
                           next(plain.feature_parties[0].model.parameters()))
    assert local.to_json()["communication"]["updates_per_exchange"] == 3


def test_communication_counts_every_array_sent():
    config = small_config(rows=200, parties=2, epochs=3)
    result = train(config)
    sent = result.to_json()["communication"]
    rows = sum(len(e.batch_ids) for e in result.transcripts[0].epochs)  # every epoch is recorded here
    dim = config.model.embedding_dim
    assert sent["per_party"] == {"embeddings_up": 4 * rows * dim, "gradients_down": 4 * rows * dim,
                                 "batch_ids_down": 8 * rows}
    assert sent["exchanges"] == result.steps
    assert sent["total_bytes"] == 2 * sum(sent["per_party"].values())
    embeddings = np.concatenate([e.embeddings for e in result.transcripts[0].epochs])
    assert embeddings.nbytes == sent["per_party"]["embeddings_up"]
    assert run_direct(config).to_json()["communication"] == sent
