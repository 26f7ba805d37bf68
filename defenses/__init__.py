"""Label-privacy defences, one module per family, found by name through two registries.

A label defence is a `fedsim.protocol.LabelTransform` (applied once to the training labels); a gradient
defence is a `fedsim.protocol.GradientTransform` (applied to every outgoing cut gradient). Each registry
entry is a class with `tasks`, `params` (accepted `--defense-param` names) and
`from_config(task, epsilon, delta, params) -> instance`. `label_extension` works through the label hook
but is a gradient-side heuristic, so it is found under either flag.

Families: `label_noise` (laplace, gaussian), `rr_on_bins`, `unbiased` (unbiased_opt),
`randomized_response` (rr, rr_with_prior), `label_extension`, `gradient_noise` (gaussian_noise,
laplace_noise, max_norm, sparsify), `dp_gradient`, `marvell`; `dp_sgd` holds Opacus DP-SGD on the top
model (`top_dp_*` parameters).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from defenses import (  # noqa: F401  (populate the registries)
    dp_gradient,
    gradient_noise,
    label_extension,
    label_noise,
    marvell,
    randomized_response,
    rr_on_bins,
    unbiased,
)
from defenses.dp_sgd import TOP_PARAMS, TopModelDP
from defenses.registry import GRADIENT_DEFENSES, LABEL_DEFENSES
from fedsim.errors import UserError, check

if TYPE_CHECKING:
    from fedsim.config import TrainConfig
    from fedsim.protocol import GradientTransform, LabelTransform

GRADIENT_DEFENSES.add("label_extension", label_extension.LabelExtension)

__all__ = ["GRADIENT_DEFENSES", "LABEL_DEFENSES", "TopModelDP", "build", "build_top_model_dp"]


def build(config: TrainConfig, task: str) -> tuple[LabelTransform, GradientTransform]:
    """The label party's hooks for a run; names and parameters are validated here.

    Each `--defense-param` goes to the defence(s) that accept it (`top_dp_*` to top-model DP-SGD); a
    parameter nobody accepts is an error naming the valid ones.
    """
    from fedsim.protocol import GradientTransform, LabelTransform

    label_cls = LABEL_DEFENSES.get(config.label_defense) if config.label_defense is not None else None
    gradient_cls = GRADIENT_DEFENSES.get(config.gradient_defense) if config.gradient_defense is not None else None
    params = dict(config.defense_params)
    accepted = set(TOP_PARAMS)
    for cls in (label_cls, gradient_cls):
        accepted |= set(cls.params) if cls is not None else set()
    unknown = sorted(set(params) - accepted)
    if unknown:
        owners = ", ".join(c.name for c in (label_cls, gradient_cls) if c is not None) or "no defence"
        valid = ", ".join(sorted(accepted))
        raise UserError(f"unknown --defense-param {unknown[0]!r} for {owners}; valid: {valid}")

    def make(cls):
        return cls.from_config(task, config.epsilon, config.delta, {k: params[k] for k in cls.params if k in params})

    label: LabelTransform = make(label_cls) if label_cls is not None else LabelTransform()
    gradient: GradientTransform = make(gradient_cls) if gradient_cls is not None else GradientTransform()
    if isinstance(gradient, LabelTransform):  # label_extension asked for as a gradient defence
        check(label_cls is None, f"{gradient_cls.name} uses the label hook: it cannot be combined with a label "
                                 f"defence ({label_cls.name if label_cls else ''})")
        label, gradient = gradient, GradientTransform()
    return label, gradient


def build_top_model_dp(config: TrainConfig) -> TopModelDP | None:
    """Opacus DP-SGD on the top model when `--defense-param top_dp_epsilon=EPS` is given, else None."""
    top = {k: v for k, v in config.defense_params.items() if k in TOP_PARAMS}
    if not top:
        return None
    check("top_dp_epsilon" in top, "top-model DP-SGD needs --defense-param top_dp_epsilon=EPS")
    return TopModelDP.from_config(config.delta, top)
