"""Gradient inversion: the LBA's ablation with the gradient-matching term only (no fit, no known-label terms)."""

from __future__ import annotations

from fedsim.attacks.lba import LBA_DEFAULTS, LearningBasedAttack
from fedsim.registry import ATTACKS


@ATTACKS.register("gradient_inversion")
class GradientInversion(LearningBasedAttack):
    """DLG-style matching from random labels: what the LBA's regularisers and initialisation add.

    Needs no known labels; when some are known they only set the random start's scale (mean, std).
    """

    name = "gradient_inversion"
    needs_known_labels = False
    defaults = {**LBA_DEFAULTS, "lambda_t": 0.0, "lambda_kg": 0.0, "lambda_kf": 0.0, "init": "random"}
