"""Gradient inversion: the LBA's ablation with the gradient-matching term only (no fit, no known-label terms)."""

from __future__ import annotations

from fedsim.attacks.lba import LBAParams, LearningBasedAttack
from fedsim.params import with_defaults
from fedsim.registry import ATTACKS


@ATTACKS.register("gradient_inversion")
class GradientInversion(LearningBasedAttack):
    """DLG-style matching from random labels: what the LBA's regularisers and initialisation add.

    Needs no known labels; when some are known they only set the random start's scale (mean, std).
    """

    summary = "DLG-style gradient matching from random labels: the LBA without its regularisers; no known labels."
    needs_known_labels = False
    Params = with_defaults(LBAParams, "GradientInversionParams", "The LBA's parameters, without fit terms.",
                           lambda_t=0.0, lambda_kg=0.0, lambda_kf=0.0, init="random")
