"""A worked example of a third-party plugin: one attack, one label defence, one AUC method (docs/plugins.md).

Importing this module registers all three. A real plugin package announces such a module in its
pyproject.toml, and fedsim imports it on the first registry lookup:

    [project.entry-points."fedsim.plugins"]
    my_plugins = "my_package.example_plugin"

tests/test_plugins.py imports this file and runs each plugin end to end.
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from fedsim.attacks.base import Attack, AttackerKnowledge, AttackResult
from fedsim.attacks.observations import split_known
from fedsim.defenses.base import Defense, heuristic_claim
from fedsim.evaluation.methods import METHODS, Histogram
from fedsim.params import Epsilon, Integer, Number, PluginParams
from fedsim.privacy.claims import PrivacyClaim
from fedsim.protocol import LabelTransform
from fedsim.registry import ATTACKS, LABEL_DEFENSES
from fedsim.rundir import PartyView

# -- an attack ---------------------------------------------------------------------------------------------

class QuantileParams(PluginParams):
    q: Number = Field(0.5, ge=0, le=1, description="Quantile of the known labels given to every attacked sample.")


@ATTACKS.register("quantile")
class QuantileAttack(Attack[QuantileParams]):
    """A baseline in the style of `mean`: one quantile of the known labels for everybody."""

    name = "quantile"
    summary = "Example plugin: every attacked sample gets a quantile of the known labels."
    tasks = ("regression",)

    def run(self, view: PartyView, knowledge: AttackerKnowledge, rng: np.random.Generator) -> AttackResult:
        split = split_known(view, knowledge, view.task)
        estimate = float(np.quantile(split.known_labels, self.params.q))
        return AttackResult(view.sample_ids[split.unknown], np.full(len(split.unknown), estimate))


# -- a label defence -----------------------------------------------------------------------------------------

class RoundLabelsParams(PluginParams):
    step: Number = Field(gt=0, description="Grid step: every label is rounded to the nearest multiple.")


@LABEL_DEFENSES.register("round_labels")
class RoundLabels(Defense, LabelTransform):
    """Round every regression label to a grid: coarser labels, no formal guarantee."""

    name = "round_labels"
    summary = "Example plugin: regression labels rounded to a grid of `step` (heuristic)."
    tasks = ("regression",)
    Params = RoundLabelsParams

    def __init__(self, step: float) -> None:
        self.step = step

    @classmethod
    def from_config(cls, task: str, epsilon: float | None, delta: float | None, params: dict) -> RoundLabels:
        cls.check_task(task)
        return cls(cls.read_params(params).step)

    def apply(self, y: np.ndarray, task: str, rng: np.random.Generator) -> np.ndarray:
        return np.round(np.asarray(y, dtype=np.float64) / self.step) * self.step

    def privacy(self) -> PrivacyClaim:
        return heuristic_claim(self.name, f"labels rounded to multiples of {self.step}", step=self.step)


# -- an AUC method -------------------------------------------------------------------------------------------

class CoarseHistogramParams(PluginParams):
    epsilon: Epsilon = Field(description="Total label-DP epsilon of the evaluation.")
    buckets: Integer = Field(10, ge=2, description="Quantile score buckets (a fixed number, not from n).")


class CoarseHistogram(Histogram):
    """`hist` (Laplace(1/eps) on each bucket's positive count: eps-label-DP) with 10 buckets unless told:
    its settings schema gives `buckets` a default, so `make_settings` hands `public` a fixed number."""

    name = "hist_coarse"
    summary = "Example plugin: hist with a fixed number of score buckets (default 10)."
    Params = CoarseHistogramParams


METHODS.add(CoarseHistogram.name, CoarseHistogram())
