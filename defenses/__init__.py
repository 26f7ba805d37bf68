"""Label-privacy defences, one module per family; importing this package fills the core's defence registries.

A label defence is a `fedsim.protocol.LabelTransform` (applied once to the training labels); a gradient
defence is a `fedsim.protocol.GradientTransform` (applied to every outgoing cut gradient). Each registry
entry is a class with `summary`, `tasks`, `Params` (its parameter schema, `fedsim.params`; `params` lists
the names, by which `--defense-param` values are routed) and `from_config(task, epsilon, delta, params) ->
instance`; `fedsim.assembly.resolve_defenses` builds them by name (docs/plugins.md). Each defence is
registered once, under the hook it uses: `label_extension` changes the training targets, so it is a label
defence (`--label-defense label_extension`), although what it blurs is the cut gradients.

Families: `label_noise` (laplace, gaussian), `rr_on_bins`, `unbiased` (unbiased_opt),
`randomized_response` (rr, rr_with_prior), `label_extension`, `gradient_noise` (gaussian_noise,
laplace_noise, max_norm, sparsify), `dp_gradient`, `marvell`, `grad_perturb` (label-DP cut gradients through
per-step randomised labels), `heuristic_losses` (mid, dcor) and `cae` (CAE / DCAE), the last three acting on
the label party's objective (`GradientTransform.wrap_top_model` / `training_loss`). Opacus DP-SGD on the top model
(`top_dp_*` parameters) is a core facility: `fedsim.privacy.dp_sgd`.
"""

from __future__ import annotations

from fedsim.defenses import (  # noqa: F401  (populate the registries)
    cae,
    dp_gradient,
    grad_perturb,
    gradient_noise,
    heuristic_losses,
    label_extension,
    label_noise,
    marvell,
    randomized_response,
    rr_on_bins,
    unbiased,
)
from fedsim.registry import GRADIENT_DEFENSES, LABEL_DEFENSES

__all__ = ["GRADIENT_DEFENSES", "LABEL_DEFENSES"]
