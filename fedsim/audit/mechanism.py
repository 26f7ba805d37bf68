"""Audit of a label mechanism alone, without training: cheap, so it can be repeated to check the audit itself.

The canaries are the whole input: m labels, each one of two public values by its own fair coin; the
mechanism releases them once and the auditor ranks the canaries by their released value (the exact
distinguisher for additive noise and randomised response). A mechanism that declares its law (`audit_law`:
laplace, gaussian, rr) is guessed on the number of canaries planned from its claim
(`fedsim.audit.ideal.planned_guesses`), any other on half of them. Used by the validity tests (a correct mechanism
is rejected about as often as the confidence allows), the violation tests and the seeded-bug suite.
`audit_gradient_mechanism` does the same for a Gaussian cut-gradient defence, with no training.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from fedsim.audit.ideal import declared_law
from fedsim.audit.report import audit_guesses_report, audit_statistic, class_guesses, privacy_family, secret_bits
from fedsim.errors import check
from fedsim.privacy.audit_bound import check_confidence
from fedsim.protocol import GradientContext, GradientTransform, LabelTransform, TrainingPlan
from fedsim.streams import AuditStream, Stream


def claimed(mechanism: LabelTransform | GradientTransform) -> tuple[float | None, float | None]:
    """(epsilon, delta) of the mechanism's claim after its release, (None, None) without a formal claim."""
    claim = mechanism.privacy()
    return (claim.epsilon, claim.delta) if claim is not None else (None, None)


def audit_label_mechanism(transform: LabelTransform, task: str, values: tuple[float, float] | None, canaries: int,
                          confidence: float = 0.95, seed: int = 0,
                          guesses: int | Sequence[int] | None = None, canary_classes: int = 2) -> dict[str, Any]:
    """Plant `canaries` labels from `values` (low, high), release them with `transform`, audit its claim.

    `canary_classes` k > 2 (multiclass task; `values` None): each canary's label is a uniform class in 0..k-1,
    the guess is its released class (every guess equally confident, ties in canary order, which the secrets do
    not influence; a release outside 0..k-1 is an abstention, least confident), the analysis f-DP with an
    alphabet of k. A mechanism that releases some labels only during training (`LabelTransform.pending`, e.g.
    rr_with_prior's second stage, whose prior comes from the trained model) has no release to audit alone:
    refused."""
    check(type(transform).pending is LabelTransform.pending,
          f"{getattr(transform, 'name', type(transform).__name__)} releases part of its labels during training, "
          f"from the trained model: audit it with `fedsim audit train`, not as a mechanism alone")
    check_confidence(confidence)
    check(canaries >= 1, f"canaries must be >= 1, got {canaries}")
    check(canary_classes >= 2, f"canary classes must be >= 2, got {canary_classes}")
    rng = np.random.default_rng([seed, Stream.AUDIT, AuditStream.MECHANISM])
    if canary_classes > 2:
        check(task == "multiclass" and values is None, f"k-ary canaries (classes 0..{canary_classes - 1}) need a "
                                                       f"multiclass task and no canary values; got {task}, {values}")
        secrets = secret_bits(canaries, seed, canary_classes)
        released = np.asarray(transform.apply(secrets.astype(np.float64), task, rng), float).reshape(canaries, -1)
        guess, score = class_guesses(released[:, 0], canary_classes)
        formal_epsilon, formal_delta = claimed(transform)
        return audit_guesses_report(secrets, guess, score, confidence, formal_epsilon, formal_delta,
                                    "released labels", guesses, family=privacy_family(transform), seed=seed,
                                    classes=canary_classes, law=declared_law(transform))
    check(values is not None, "binary canaries need two canary values (low, high)")
    assert values is not None
    low, high = values
    check(low < high, f"canary values need low < high, got {values}")
    bits = secret_bits(canaries, seed)
    labels = np.where(bits == 1, high, low).astype(np.float64)
    released = np.asarray(transform.apply(labels, task, rng), float)
    formal_epsilon, formal_delta = claimed(transform)
    return audit_statistic(bits, released.reshape(canaries, -1)[:, 0], confidence, formal_epsilon, formal_delta,
                           "released labels", guesses, family=privacy_family(transform), seed=seed,
                           law=declared_law(transform))


def audit_gradient_mechanism(defense: GradientTransform, epochs: int, parties: int, canaries: int,
                             confidence: float = 0.95, seed: int = 0, scale: float = 10.0,
                             guesses: int | Sequence[int] | None = None) -> dict[str, Any]:
    """A Gaussian cut-gradient defence (clip C, noise multiplier sigma: `dp_gradient` and its subclasses) alone.

    The auditor picks each canary's clean row: +scale C e_1 or -scale C e_1 by the canary's coin (after a
    correct clip, two rows 2C apart: the worst case), one batch of all canaries, sent to each of `parties`
    parties once per epoch as in training. The exact log-likelihood ratio of isotropic Gaussian noise around
    the two clipped rows is increasing in the sum of the received rows' first coordinates: that is the
    statistic. The claim audited is the defence's own (`privacy()`), which also counts the top model's
    updates that this audit does not release: so a correct defence audits below its claim.
    """
    check_confidence(confidence)
    check(canaries >= 2, f"canaries must be >= 2, got {canaries}")
    dim = 4
    plan = TrainingPlan("regression", canaries, canaries, epochs, 1, parties, (dim,) * parties)
    defense.prepare(plan, np.random.default_rng([seed, Stream.AUDIT, AuditStream.GRADIENT_MECHANISM]))
    bits = secret_bits(canaries, seed)
    rows = torch.zeros(canaries, dim)
    rows[:, 0] = torch.from_numpy(np.where(bits == 1, 1.0, -1.0) * scale * float(getattr(defense, "clip", 1.0)))
    index = torch.arange(canaries)
    statistic = np.zeros(canaries)
    for epoch in range(epochs):
        for party in range(parties):
            context = GradientContext(party, epoch, 0, index, torch.zeros(canaries, 1), canaries)
            statistic += (defense(rows / canaries, context) * canaries)[:, 0].double().numpy()
    formal_epsilon, formal_delta = claimed(defense)
    return audit_statistic(bits, statistic, confidence, formal_epsilon, formal_delta, "cut-gradient rows",
                           guesses, family=privacy_family(defense), auditor="white-box", seed=seed)
