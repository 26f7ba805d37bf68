"""Synthetic multiclass transcripts with a known top model: softmax cross-entropy cut gradients computed in
closed form, so an attack's exactness can be tested (tests) and measured (experiments/results/bench_multiclass.md) on
the top-model shape it claims, including the identity/sum top that fedsim's runtimes do not train."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import torch
from torch import nn

from fedsim.rundir import BottomModelFacts, DefenseFacts, PartyView, PublicRunFacts
from fedsim.streams import Stream
from fedsim.transcript import EpochTranscript, Transcript


def synthetic_view(top: str = "sum", n: int = 600, k: int = 4, d: int | None = None, epochs: int = 2,
                   batch: int = 50, seed: int = 0, features: int = 10,
                   signal: float = 1.0, rr_epsilon: float | None = None) -> tuple[PartyView, np.ndarray]:
    """A feature party's view and the true labels. Its fixed linear bottom model gives h (width d; K for
    `top='sum'`); the label party's logits are z = h + u (`sum`: an aggregation of the attacker's logits
    with another party's u) or z = W h + u (`linear`, W fixed, K x d); u is another party's contribution.
    Labels come from a noisy linear rule of the features (`signal` scales it). With `rr_epsilon` the label party
    trains on k-ary randomised-response releases of the labels (the manifest says `rr` at that epsilon)."""
    rng = np.random.default_rng(seed)
    d = k if d is None else d
    x = rng.standard_normal((n, features)).astype(np.float32)
    y = np.argmax(signal * x[:, :k] + rng.standard_normal((n, k)), axis=1)
    trained = y
    if rr_epsilon is not None:
        from fedsim.privacy.mechanisms import randomized_response

        trained = randomized_response(y, rr_epsilon, k, np.random.default_rng([seed, Stream.LABEL_MECHANISM]))
    torch.manual_seed(seed)
    bottom = nn.Linear(features, d)
    with torch.no_grad():
        h = bottom(torch.from_numpy(x)).double()
    weight = torch.eye(k, dtype=torch.float64) if top == "sum" else torch.from_numpy(rng.standard_normal((k, d)))
    other = torch.from_numpy(rng.standard_normal((n, k)))
    ids = np.arange(100, 100 + n, dtype=np.int64)
    recorded = []
    for epoch in range(epochs):
        order = rng.permutation(n)
        steps = np.repeat(np.arange(-(-n // batch)), batch)[:n].astype(np.int32)
        counts = np.bincount(steps)[steps]
        logits = h[order] @ weight.T + other[order]
        residual = torch.softmax(logits, 1) - torch.nn.functional.one_hot(torch.from_numpy(trained[order]), k)
        grad = (residual @ weight) / torch.from_numpy(counts)[:, None]
        recorded.append(EpochTranscript(epoch, ids[order], steps, h[order].float().numpy(), grad.float().numpy()))
    defense = DefenseFacts() if rr_epsilon is None else DefenseFacts(label_defense="rr", epsilon=rr_epsilon)
    public = PublicRunFacts(task="multiclass", loss="cross_entropy", batch_size=batch, parties=2, epochs=epochs,
                            local_steps=1, n_classes=k, malicious_party=0, malicious_update_scale=1.0,
                            bottom_model=BottomModelFacts(embedding_dim=d, hidden=1, depth=0), defense=defense)
    manifest = SimpleNamespace(public=public, n_classes=k)
    view = PartyView(party=0, transcript=Transcript(0, recorded), features=x, sample_ids=ids, bottom_model=bottom,
                     task="multiclass", loss="cross_entropy", batch_size=batch, n_parties=2, manifest=manifest)
    return view, y.astype(np.float64)


def announce_defense(view: PartyView, **facts: object) -> None:
    """Change the defence facts a synthetic view's manifest announces (`DefenseFacts` fields): tests of what an
    attack does with a claim that differs from the mechanism actually applied."""
    defense = view.public.defense.model_copy(update=facts)
    view.manifest = SimpleNamespace(public=view.public.model_copy(update={"defense": defense}),  # type: ignore[assignment]
                                    n_classes=view.n_classes)
