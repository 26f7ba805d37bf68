"""The in-process runtime: direct calls between parties, the fast path for sweeps and tests."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from fedsim.parties import FeatureParty, LabelParty
from fedsim.schedule import Schedule


def run_local(
    feature_parties: Sequence[FeatureParty],
    label_party: LabelParty,
    schedule: Schedule,
    on_step: Callable[[int], None] = lambda n: None,
) -> None:
    """One step: embeddings up, loss and top update at the label party, one cut gradient down per party."""
    for epoch, step, rows in schedule.steps():
        embeddings = [party.forward(rows) for party in feature_parties]
        gradients = label_party.train_step(rows, embeddings, epoch, step)
        for party, gradient in zip(feature_parties, gradients, strict=True):
            party.backward(gradient, epoch, step)
        on_step(1)
