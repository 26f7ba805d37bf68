"""Audit of a label mechanism alone, without training: cheap, so it can be repeated to check the audit itself.

The canaries are the whole input: m labels, each one of two public values by its own fair coin; the
mechanism releases them once and the auditor ranks the canaries by their released value (the exact
distinguisher for additive noise and randomised response). Used by the validity tests (a correct mechanism
is rejected about as often as the confidence allows) and the violation test.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from fedsim.audit.report import audit_statistic, secret_bits
from fedsim.errors import check
from fedsim.privacy.audit_bound import check_confidence
from fedsim.protocol import LabelTransform
from fedsim.streams import AuditStream, Stream


def audit_label_mechanism(transform: LabelTransform, task: str, values: tuple[float, float], canaries: int,
                          confidence: float = 0.95, seed: int = 0,
                          guesses: int | Sequence[int] | None = None) -> dict[str, Any]:
    """Plant `canaries` labels from `values` (low, high), release them with `transform`, audit its claim."""
    check_confidence(confidence)
    check(canaries >= 1, f"canaries must be >= 1, got {canaries}")
    low, high = values
    check(low < high, f"canary values need low < high, got {values}")
    bits = secret_bits(canaries, seed)
    labels = np.where(bits == 1, high, low).astype(np.float64)
    rng = np.random.default_rng([seed, Stream.AUDIT, AuditStream.MECHANISM])
    released = np.asarray(transform.apply(labels, task, rng), float)
    claim = transform.privacy()
    formal_epsilon, formal_delta = (claim.epsilon, claim.delta) if claim is not None else (None, None)
    return audit_statistic(bits, released.reshape(canaries, -1)[:, 0], confidence, formal_epsilon, formal_delta,
                           "released labels", guesses)
