"""`best`: every applicable attack on a small parameter grid, the winner chosen on held-out KNOWN labels only.

The known labels are split (seeded): `holdout` of them (at least 3) are hidden from every candidate, which runs on
the rest; each candidate is scored on the hidden ones with the task's headline metric (R², leak AUC, accuracy),
the winner reruns with every known label and gives the estimates (binary with one class held out: accuracy).
The truth of the attacked samples is never read,
so the choice is one an attacker could make. Candidates (the grid, per task):

| task | candidates |
| --- | --- |
| regression | mean, linear, model_completion, residual, lba, bayes |
| binary | norm_scoring and direction_scoring (epochs last / all), model_completion, lba, bayes |
| multi-class | direct_label_inference, direction_scoring (epochs last / all), norm_scoring, |
| | batch_label_inference, model_completion, lba, bayes |

A candidate that refuses the run (a mechanism `bayes` cannot model, too few classes among the known labels) is
skipped and listed in `skipped`. Needs at least 10 known labels (fewer: one line, exit 2).
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from fedsim.attacks.base import Attack, AttackerKnowledge, AttackResult, ParamValue
from fedsim.attacks.baselines import HEADLINE_METRIC
from fedsim.errors import UserError
from fedsim.metrics import attack_metrics
from fedsim.params import Integer, Number, PluginParams
from fedsim.registry import ATTACKS
from fedsim.rundir import PartyView

EPOCHS = ({"epochs": "last"}, {"epochs": "all"})
GRID: dict[str, list[tuple[str, dict[str, ParamValue]]]] = {
    "regression": [("mean", {}), ("linear", {}), ("model_completion", {}), ("residual", {}), ("lba", {}),
                   ("bayes", {})],
    "binary": [*[(n, p) for n in ("norm_scoring", "direction_scoring") for p in EPOCHS], ("model_completion", {}),
               ("lba", {}), ("bayes", {})],
    "multiclass": [*[(n, p) for n in ("direct_label_inference", "direction_scoring") for p in EPOCHS],
                   ("norm_scoring", {}), ("batch_label_inference", {}), ("model_completion", {}), ("lba", {}),
                   ("bayes", {})],
}
MIN_HELD_OUT = 3
STEP_PARAMS = ("min_steps", "steps", "init_steps")  # the candidates' optimisation-step settings `steps` caps


class BestParams(PluginParams):
    holdout: Number = Field(0.3, gt=0, lt=1, description="Share of the known labels that scores the candidates.")
    steps: Integer | None = Field(None, ge=1, description="Optimisation steps of every training-backed candidate "
                                                          "(min_steps, steps, init_steps); none: their defaults.")


@ATTACKS.register("best")
class BestAttack(Attack[BestParams]):
    summary = "Every applicable attack on a small grid; the best on held-out known labels reruns on all of them."
    tasks = ("regression", "binary", "multiclass")
    min_known = 10

    def run(self, view: PartyView, knowledge: AttackerKnowledge, rng: np.random.Generator) -> AttackResult:
        hidden, visible = knowledge.hold_out(self.params.holdout, MIN_HELD_OUT, rng)
        labels = np.asarray(knowledge.known_labels, dtype=np.float64)
        metric = HEADLINE_METRIC[view.task]
        if len(np.unique(labels[hidden])) < 2 and view.task == "binary":
            metric = "accuracy"  # AUC needs both classes among the held-out labels
        scores: dict[str, float] = {}
        skipped: dict[str, str] = {}
        best: tuple[float, str, dict[str, ParamValue]] | None = None
        for name, grid_params in GRID[view.task]:
            label = _label(name, grid_params)
            params = self._with_steps(name, grid_params)
            try:
                result = ATTACKS.get(name)(params).run(view, visible, rng)
            except UserError as exc:
                skipped[label] = str(exc)
                continue
            where = {i: r for r, i in enumerate(np.asarray(result.ids).tolist())}
            rows = [where[i] for i in np.asarray(knowledge.known_ids)[hidden].tolist()]
            score = attack_metrics(view.task, labels[hidden], np.asarray(result.estimates)[rows]).get(metric, np.nan)
            scores[label] = float(score)
            if np.isfinite(score) and (best is None or score > best[0]):
                best = (float(score), name, params)
        if best is None:
            raise UserError(f"attack 'best': no candidate could be scored on the held-out known labels "
                            f"({'; '.join(f'{k}: {v}' for k, v in skipped.items()) or 'none ran'})")
        score, name, params = best
        result = ATTACKS.get(name)(params).run(view, knowledge, rng)
        info = {"chosen": name, "chosen_params": params, "held_out_known": int(hidden.sum()),
                "held_out_metric": metric, "held_out_score": score, "candidates": scores, "skipped": skipped}
        return AttackResult(result.ids, result.estimates, result.readouts, {**result.info, **info})

    def _with_steps(self, name: str, params: dict[str, ParamValue]) -> dict[str, ParamValue]:
        """`params` with the candidate's step settings set to `steps` when given (a time budget)."""
        steps = self.params.steps
        if steps is None:
            return params
        fields = ATTACKS.get(name).Params.model_fields
        return {**params, **{k: steps for k in STEP_PARAMS if k in fields}}


def _label(name: str, params: dict[str, ParamValue]) -> str:
    return name + "".join(f" {k}={v}" for k, v in params.items())
