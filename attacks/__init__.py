"""Label-inference attacks run by a curious feature party, one module per attack, a registry by name.

`import attacks` fills `ATTACKS`; `evaluate_attack` runs one by name and scores it (docs/CLI.md).
"""

from __future__ import annotations

from fedsim.attacks import (  # noqa: F401 - importing a module registers its attack
    active_model_completion,
    batch_label_inference,
    bayes,
    best,
    direct_label_inference,
    direction_scoring,
    gradient_inversion,
    lba,
    linear,
    mean,
    model_completion,
    norm_scoring,
    residual,
)
from fedsim.attacks.base import Attack, AttackerKnowledge, AttackResult
from fedsim.attacks.evaluate import evaluate_attack
from fedsim.registry import ATTACKS

__all__ = ["ATTACKS", "Attack", "AttackResult", "AttackerKnowledge", "evaluate_attack"]
