"""The in-process runtime: direct calls between parties, the fast path for sweeps and tests.

When every party trains with a plain torch Adam/SGD of the same settings (the usual case; not when the top
model trains with DP-SGD), a step runs as one autograd call and one fused optimizer step over all parties'
weights (`FusedSteps`), as a monolithic model would. Nothing the parties exchange changes: each feature party
still records the embeddings it sent and the (defended) cut gradient it received, and its bottom model is
updated with exactly that gradient. Adam and SGD update each weight from its own gradient and state alone, so
one optimizer over the union of the parties' weights computes the same numbers as one optimizer per party
(the parity tests against the per-party Flower runtime check this bit for bit).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from fedsim.parties import FeatureParty, LabelParty, check_finite_loss
from fedsim.protocol import GradientTransform
from fedsim.schedule import Schedule

FUSABLE = (torch.optim.Adam, torch.optim.SGD)


def run_local(
    feature_parties: Sequence[FeatureParty],
    label_party: LabelParty,
    schedule: Schedule,
    on_step: Callable[[int], None] = lambda n: None,
    fused: bool = True,
) -> None:
    """One step: embeddings up, loss and top update at the label party, one cut gradient down per party.
    `fused=False` forces the per-party path (the Flower runtime's order of calls), for tests and benchmarks."""
    fused = FusedSteps.build(feature_parties, label_party) if fused else None
    for epoch, step, rows in schedule.steps():
        if fused is not None:
            fused.step(rows, epoch, step)
        else:
            embeddings = [party.forward(rows) for party in feature_parties]
            gradients = label_party.train_step(rows, embeddings, epoch, step)
            for party, gradient in zip(feature_parties, gradients, strict=True):
                party.backward(gradient, epoch, step)
        on_step(1)


def merged_optimizer(optimizers: Sequence[torch.optim.Optimizer]) -> torch.optim.Optimizer | None:
    """One optimizer over all the given optimizers' weights, or None when they cannot be merged exactly
    (another optimizer class, e.g. Opacus' DPOptimizer; different settings; several groups; state already)."""
    first = optimizers[0]
    if type(first) not in FUSABLE:
        return None
    for opt in optimizers:
        if type(opt) is not type(first) or len(opt.param_groups) != 1 or opt.state or opt.defaults != first.defaults:
            return None
        group = {k: v for k, v in opt.param_groups[0].items() if k != "params"}
        if group != {k: v for k, v in first.param_groups[0].items() if k != "params"}:
            return None
    weights = [w for opt in optimizers for w in opt.param_groups[0]["params"]]
    return type(first)(weights, **first.defaults)


class FusedSteps:
    """All parties' updates of a step in one autograd call (two with a gradient defence) and one optimizer step.

    The parties' own optimizers are left untouched (their state stays empty); this object's optimizer holds
    the state of every weight during the run.
    """

    def __init__(self, feature_parties: Sequence[FeatureParty], label_party: LabelParty,
                 optimizer: torch.optim.Optimizer) -> None:
        self.feature_parties, self.label_party, self.optimizer = list(feature_parties), label_party, optimizer
        # without a gradient defence the cut gradient reaches the bottom models unchanged: one backward pass
        self.identity = type(label_party.gradient_transform) is GradientTransform

    @classmethod
    def build(cls, feature_parties: Sequence[FeatureParty], label_party: LabelParty) -> FusedSteps | None:
        if label_party.own is not None or any(p.local_steps != label_party.local_steps for p in feature_parties):
            return None  # the label party's own bottom model steps inside its train_step
        top = [label_party.optimizer] if label_party.optimizer is not None else []  # none: --top-model sum
        optimizer = merged_optimizer([p.optimizer for p in feature_parties] + top)
        return None if optimizer is None else cls(feature_parties, label_party, optimizer)

    def step(self, rows: np.ndarray, epoch: int, step: int) -> None:
        index = torch.from_numpy(rows)
        outputs = [party.model(party.features[index]) for party in self.feature_parties]
        self.optimizer.zero_grad(set_to_none=True)
        if self.identity:
            for h in outputs:
                h.retain_grad()
            loss, _, _ = self.label_party.loss(rows, outputs, epoch, step)
            check_finite_loss(loss, epoch, step)
            loss.backward()
            gradients = [h.grad for h in outputs]
        else:
            inputs = [h.detach().requires_grad_(True) for h in outputs]
            loss, index, targets = self.label_party.loss(rows, inputs, epoch, step)
            check_finite_loss(loss, epoch, step)
            loss.backward()
            gradients = self.label_party.defend([h.grad for h in inputs], index, targets, epoch, step)
            torch.autograd.backward(outputs, gradients)
        self.optimizer.step()
        for party, h, gradient in zip(self.feature_parties, outputs, gradients, strict=True):
            if party.recorder is not None:
                party.recorder.record(epoch, step, party.sample_ids[rows], h.detach(), gradient)
        stale = [h.detach() for h in outputs]
        for _ in range(self.label_party.local_steps - 1):  # FedBCD: every party reuses what it last received
            fresh = [party.model(party.features[index]) for party in self.feature_parties]
            loss, _, _ = self.label_party.loss(rows, stale, epoch, step)
            self.optimizer.zero_grad(set_to_none=True)
            torch.autograd.backward([loss, *fresh], [None, *gradients])
            self.optimizer.step()
