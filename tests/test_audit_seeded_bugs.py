"""Seeded bugs: broken variants of the formal defences, registered as third-party plugins through the public
plugin API (`REGISTRY.register`), must be caught by one audit each at 95% (issue 23, section 3); the correct
mechanisms must not read "violation" more often than the confidence allows.

Each is audited alone (`fedsim.audit.mechanism`: 1,000 canaries, the exact likelihood-ratio ranking, the
f-DP analysis of the claim): label mechanisms on their released labels, `dp_gradient` variants on the cut-gradient
rows they send over 10 epochs to one party. What is caught and what is not: docs/trusting-epsilon.md.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy.stats import binom

from fedsim import registry
from fedsim.audit.mechanism import audit_gradient_mechanism, audit_label_mechanism
from fedsim.defenses.dp_gradient import DPGradient, clip_rows
from fedsim.defenses.label_noise import GaussianLabels, LaplaceLabels
from fedsim.defenses.randomized_response import RandomizedResponse
from fedsim.privacy.mechanisms import randomized_response
from fedsim.registry import GRADIENT_DEFENSES, LABEL_DEFENSES

CANARIES, CONFIDENCE = 1000, 0.95
EPOCHS, PARTIES = 10, 1
CLIP = {"low": 0.0, "high": 1.0}


class HalvedNoise:
    """Bug mixin for additive label noise: half the noise the claim is computed for."""

    def apply(self, y, task, rng):
        released, clipped = super().apply(y, task, rng), np.clip(y, self.low, self.high)
        return clipped + (released - clipped) / 2


class HalfNoiseLaplace(HalvedNoise, LaplaceLabels):
    """Bug: Laplace with half the noise its claim is computed for."""

    name = "bug_laplace_half_noise"


class DoubleEpsilonRR(RandomizedResponse):
    """Bug: binary RR whose keep probability is that of 2 eps; the ledger records eps."""

    name = "bug_rr_double_epsilon"

    def apply(self, y, task, rng):
        self.ledger.randomized_response(self.epsilon, 2, what="every label once")
        return randomized_response(np.asarray(y, dtype=np.int64), 2 * self.epsilon, 2, rng)


class HalfSensitivityGaussian(HalvedNoise, GaussianLabels):
    """Bug: Gaussian labels calibrated to sensitivity (high - low) / 2: half the noise."""

    name = "bug_gaussian_half_sensitivity"


class HalfSigmaDPGradient(DPGradient):
    """Bug: dp_gradient adding noise of multiplier sigma / 2 while accounting sigma."""

    name = "bug_dp_gradient_half_sigma"

    def transform_rows(self, rows, context):
        return clip_rows(rows, self.clip) + self.noise(rows.shape, self.sigma * self.clip / 2)


class OneEpochAccountantDPGradient(DPGradient):
    """Bug: the accountant (and the calibration) counts one epoch of many."""

    name = "bug_dp_gradient_one_epoch"

    def prepare(self, plan, rng):
        super().prepare(dataclasses.replace(plan, epochs=1), rng)


class ClipAfterNoiseDPGradient(DPGradient):
    """Bug: clipping after the noise (the clean row's size leaks through the clip)."""

    name = "bug_dp_gradient_clip_after_noise"

    def transform_rows(self, rows, context):
        return clip_rows(rows + self.noise(rows.shape, self.sigma * self.clip), self.clip)


class NoiseOnACopyDPGradient(DPGradient):
    """Bug: the noise goes to a copy that the label party never sends."""

    name = "bug_dp_gradient_noise_on_copy"

    def transform_rows(self, rows, context):
        clipped = clip_rows(rows, self.clip)
        noisy = clipped.clone()
        noisy += self.noise(rows.shape, self.sigma * self.clip)
        return clipped


LABEL_BUGS = [(HalfNoiseLaplace, "regression", 1.0, None), (DoubleEpsilonRR, "binary", 1.0, None),
              (HalfSensitivityGaussian, "regression", 4.0, 1e-5)]
GRADIENT_BUGS = [(HalfSigmaDPGradient, 4.0), (OneEpochAccountantDPGradient, 2.0), (ClipAfterNoiseDPGradient, 2.0),
                 (NoiseOnACopyDPGradient, 2.0)]
# the one bug this audit is not expected to catch (docs/trusting-epsilon.md): sigma / 2 on the cut rows of one
# party still sits inside the claim, which also pays for the top model's updates
NOT_CAUGHT = {HalfSigmaDPGradient.name}


@pytest.fixture
def plugins(monkeypatch):
    """The broken variants, registered as a third-party plugin would be, into copies of the registries."""
    for reg in (LABEL_DEFENSES, GRADIENT_DEFENSES):
        monkeypatch.setattr(reg, "_items", dict(reg._items))
    for cls, *_ in LABEL_BUGS:
        LABEL_DEFENSES.register(cls.name)(cls)
    for cls, _ in GRADIENT_BUGS:
        GRADIENT_DEFENSES.register(cls.name)(cls)
    yield
    assert registry.LABEL_DEFENSES is LABEL_DEFENSES


def label_audit(name: str, task: str, epsilon: float, delta: float | None, seed: int) -> dict:
    params = {} if task == "binary" else CLIP
    transform = LABEL_DEFENSES.get(name).from_config(task, epsilon, delta, params)
    values = (0.0, 1.0)
    return audit_label_mechanism(transform, task, values, CANARIES, CONFIDENCE, seed)


def gradient_audit(name: str, epsilon: float, seed: int) -> dict:
    defense = GRADIENT_DEFENSES.get(name).from_config("binary", epsilon, 1e-5, {})
    return audit_gradient_mechanism(defense, EPOCHS, PARTIES, CANARIES, CONFIDENCE, seed, guesses=CANARIES // 5)


def test_seeded_bugs_are_flagged_violation(plugins):
    verdicts = {cls.name: label_audit(cls.name, task, eps, delta, 0)["verdict"] for cls, task, eps, delta in LABEL_BUGS}
    verdicts |= {cls.name: gradient_audit(cls.name, eps, 0)["verdict"] for cls, eps in GRADIENT_BUGS}
    caught = {name for name, v in verdicts.items() if v == "violation"}
    assert len(caught) >= 6, verdicts
    assert caught >= set(verdicts) - NOT_CAUGHT, verdicts


CORRECT = [("laplace", "regression", 1.0, None), ("rr", "binary", 1.0, None), ("gaussian", "regression", 4.0, 1e-5)]
# 20 audits of correct mechanisms at 95%: each reads "violation" with probability <= 0.05, so the count is at
# most Binomial(20, 0.05); P[count >= 4] = 0.016, the margin this test allows (3 false alarms)
VALIDITY_AUDITS, ALLOWED = 20, 3


def test_correct_mechanisms_read_violation_no_more_often_than_the_confidence_allows():
    assert binom.sf(ALLOWED, VALIDITY_AUDITS, 1 - CONFIDENCE) < 0.02  # the margin stated above
    verdicts = [label_audit(*CORRECT[i % 3], seed=100 + i)["verdict"] for i in range(15)]
    verdicts += [gradient_audit("dp_gradient", 2.0, seed=200 + i)["verdict"] for i in range(5)]
    assert len(verdicts) == VALIDITY_AUDITS
    assert sum(v == "violation" for v in verdicts) <= ALLOWED, verdicts
