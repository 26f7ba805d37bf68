"""label_extension: Random / Model-based Label Extension (Qiu, Zheng, Chen, Zheng, arXiv 2308.09448),
reconstructed from the paper's abstract only (the method section was not available to us).

Our reading: each scalar regression label y_i becomes a `dimension`-dimensional target
(y_i, r_i1, ..., r_i,k-1); the top model gets k outputs, trains on all of them with MSE, and predicts
with column 0 (`prediction_column`). The cut gradient of example i is then a sum of k residual terms,
one real and k-1 fake, so a gradient-inversion attacker sees a mixture it cannot attribute.
- `variant=rle` (random): r_ij = y_pi_j(i), the label of a random other example (one permutation per
  column, drawn once), so fake and real coordinates have the same marginal law.
- `variant=mle` ("keeps the original label dominant"): r_ij = (1 - mix) y_i + mix y_pi_j(i), fakes that
  lean towards the true label (`mix` in (0, 1], default 0.5), which costs less utility and protects less.
Heuristic: no formal guarantee (the fakes are functions of other true labels).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from fedsim.defenses.base import Defense, heuristic_claim
from fedsim.params import Integer, Number, PluginParams
from fedsim.privacy.claims import PrivacyClaim
from fedsim.protocol import LabelTransform
from fedsim.registry import LABEL_DEFENSES


class LabelExtensionParams(PluginParams):
    dimension: Integer = Field(4, ge=2, description="Targets per sample: the label plus dimension - 1 fakes.")
    variant: Literal["rle", "mle"] = Field("rle", description="Fakes: other labels (rle) or leaning to y (mle).")
    mix: Number = Field(0.5, gt=0, le=1, description="mle only: weight of the other label in each fake.")


@LABEL_DEFENSES.register("label_extension")
class LabelExtension(Defense, LabelTransform):
    """Extend each label with k - 1 fake coordinates (module docstring); predictions come from column 0."""

    summary = "Qiu et al.'s label extension: k - 1 fake target columns mixed into every gradient (heuristic)."
    tasks = ("regression",)
    Params = LabelExtensionParams

    def __init__(self, dimension: int, variant: str, mix: float) -> None:
        self.dimension, self.variant, self.mix = dimension, variant, mix

    @classmethod
    def from_config(cls, task: str, epsilon: float | None, delta: float | None, params: dict) -> LabelExtension:
        cls.check_task(task)
        p = cls.read_params(params)
        return cls(p.dimension, p.variant, p.mix)

    def apply(self, y: np.ndarray, task: str, rng: np.random.Generator) -> np.ndarray:
        y = np.asarray(y, dtype=np.float64)
        fakes = np.stack([y[rng.permutation(len(y))] for _ in range(self.dimension - 1)], axis=1)
        if self.variant == "mle":
            fakes = (1 - self.mix) * y[:, None] + self.mix * fakes
        return np.concatenate([y[:, None], fakes], axis=1)

    @property
    def prediction_column(self) -> int:
        return 0

    def privacy(self) -> PrivacyClaim:
        return heuristic_claim(self.name, f"label extension ({self.variant}, {self.dimension} targets) mixes "
                                          "real and fake residuals in every gradient",
                               dimension=self.dimension, variant=self.variant)
