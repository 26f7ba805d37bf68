"""Named random streams: every `np.random.default_rng([seed, TAG, ...])` in fedsim uses a tag from here.

A stream is a seed-sequence entropy list `[seed, TAG, *sub]`. Two purposes must never share a tag: numpy's
`SeedSequence` pads short entropy lists with zeros, so `[seed, 40]` and `[seed, 40, 0]` are the *same* stream
(that is how `ATTACK_SEED = 40` once drew the attacker's known labels from the label party's own-model stream).
`tests/test_streams.py` checks that every tag is unique within its namespace and that no call site writes a
bare number.

Namespaces: `Stream` holds the tags of a training run, of the attacks and of the audits, which all draw from
one run's seed; `AucStream` holds those of the AUC evaluation (`fedsim auc`, curves), whose seed never drives a
training run. Sub-tags (the third entry) are named by `AttackStream` and `AuditStream`.
"""

from __future__ import annotations

import hashlib
from enum import IntEnum, unique

import numpy as np


@unique
class Stream(IntEnum):
    """Tags of a training run's streams (and of the attacks and audits run on it)."""

    DATASET = 0  # built-in tables: synthetic generation and subsampling (fedsim.assembly.load_dataset)
    COLUMN_PARTITION = 1  # random partition of the columns over the feature parties (fedsim.data.vertical)
    BATCH_ORDER = 2  # per-epoch batch order, [seed, BATCH_ORDER, epoch] (fedsim.schedule)
    LABEL_PARTY_COLUMNS = 3  # the columns the label party keeps for its own bottom model (--label-party-features)
    BOTTOM_INIT = 10  # feature party k's bottom model, [seed, BOTTOM_INIT, k] (fedsim.parties)
    TOP_INIT = 20  # the label party's top model (fedsim.assembly)
    LABEL_MECHANISM = 30  # the label defence's noise (LabelTransform.apply)
    GRADIENT_PREPARE = 31  # GradientTransform.prepare (the gradient defence's per-run noise state)
    TARGET_NORMALIZATION = 32  # GradientTransform.target_normalization (private offset/scale)
    TOP_DP = 33  # DP-SGD on the top model (privatize_top_model, or top_dp_epsilon)
    TOP_WRAP = 34  # GradientTransform.wrap_top_model
    OWN_MODEL = 35  # the label party's own bottom model (--label-party-features); was 40 = the attack tag
    ATTACK = 40  # an attack's streams, sub-tagged by `AttackStream` (fedsim.attacks)
    AUDIT = 50  # an audit's streams, sub-tagged by `AuditStream` (fedsim.audit)


@unique
class AttackStream(IntEnum):
    """Sub-tags of `[seed, Stream.ATTACK, sub]`."""

    KNOWN_LABELS = 0  # which labels the attacker knows
    RUN = 1  # the attack's own randomness
    MODEL_COMPLETION = 2  # the model-completion baseline of the features-only references


@unique
class AuditStream(IntEnum):
    """Sub-tags of `[seed, Stream.AUDIT, sub]`."""

    CANARY_CHOICE = 0  # which rows are canaries
    SECRET_BITS = 1  # each canary's secret bit
    MECHANISM = 2  # the audited label mechanism's noise (mechanism audits)
    AUC_CANARIES = 3  # the canaries of an AUC audit
    IDEAL_OBSERVER = 4  # the ideal observer's draws of the worst-case mechanism (fedsim.audit.report)
    GRADIENT_MECHANISM = 5  # the audited gradient defence's noise state (audit_gradient_mechanism)


@unique
class AucStream(IntEnum):
    """Tags of the AUC evaluation's streams (`fedsim auc`, curves, their Flower apps)."""

    CLIENT_SPLIT = 0  # the iid split of the examples over the clients
    CLIENT_NOISE = 1  # client c's noise in repeat r, [seed, CLIENT_NOISE, r, c]
    SERVER = 2  # the server's stream in repeat r (simulated intervals)
    CURVE_NOISE = 3  # the curve intervals' noise draws in repeat r (fedsim.evaluation.curves)
    CRITEO_SCORES = 7  # the synthetic criteo-like scores
    RARE_POSITIVE_SCORES = 8  # the synthetic rare-positive scores


LABEL_PARTY_ROLE = "label-party"


def secret_key(seed: int, labels: np.ndarray, role: str = LABEL_PARTY_ROLE) -> int:
    """A 128-bit key for the label party's private streams, `[key, TAG]`: SHA-256 of the role, the seed and
    every training label.

    The label party's streams (`Stream.TOP_INIT` .. `Stream.OWN_MODEL`) draw from this key, not from the seed, and
    the seed is kept out of every transcript folder (fedsim.rundir), so a feature party cannot replay the label
    mechanism's noise from what it holds. The seed alone would not do: a small `--seed` is found by trying values
    (the train/test split in a party's sample ids depends on it). The labels are what only the label party holds:
    rebuilding the key needs every training label exactly, and a party that had them would not need the noise.
    Runs stay bit-for-bit reproducible from `--seed` and the data.
    """
    digest = hashlib.sha256(f"fedsim/{role}/{int(seed)}/".encode())
    digest.update(np.ascontiguousarray(labels, dtype=np.float64).tobytes())
    return int.from_bytes(digest.digest()[:16], "big")


NAMESPACES: tuple[type[IntEnum], ...] = (Stream, AttackStream, AuditStream, AucStream)
