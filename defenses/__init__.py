"""Label-privacy defences, one module per family, found by name through two registries.

A label defence is a `fedsim.protocol.LabelTransform` (applied once to the training labels); a gradient
defence is a `fedsim.protocol.GradientTransform` (applied to every outgoing cut gradient). Each registry
entry is a class with `from_config(task, epsilon, delta, params) -> instance`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fedsim.registry import Registry

if TYPE_CHECKING:
    from fedsim.config import TrainConfig
    from fedsim.protocol import GradientTransform, LabelTransform

LABEL_DEFENSES: Registry = Registry("label defence")
GRADIENT_DEFENSES: Registry = Registry("gradient defence")


def build(config: TrainConfig, task: str) -> tuple[LabelTransform, GradientTransform]:
    """The label party's hooks for a run; names and parameters are validated here."""
    from fedsim.protocol import GradientTransform, LabelTransform

    label: LabelTransform = LabelTransform()
    gradient: GradientTransform = GradientTransform()
    params = dict(config.defense_params)
    if config.label_defense is not None:
        label = LABEL_DEFENSES.get(config.label_defense).from_config(task, config.epsilon, config.delta, params)
    if config.gradient_defense is not None:
        gradient = GRADIENT_DEFENSES.get(config.gradient_defense).from_config(
            task, config.epsilon, config.delta, params
        )
    return label, gradient
