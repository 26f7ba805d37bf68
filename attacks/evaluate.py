"""`evaluate_attack`: pick the known labels, run one attack on a party's view, score the attacked samples.

`draw_known`, `run_attack` and `score_attack` are its three parts: a transcript from a real deployment has no truth, so
the CLI runs the attack with the known labels the user gives and scores it only when truth exists.

Scoring also scores the reference predictors (`fedsim.attacks.baselines`) on the same samples and reports the
attack's `advantage`: its headline metric (R², binary: leak AUC) minus the best features-only reference's,
i.e. what the protocol leaked beyond what the party's own features and known labels give.

Classification: the advantage is taken on the matched scores (`fedsim.metrics.matched_classes`: best one-to-one
relabelling of the estimates) when the attacker could learn that map, i.e. its known labels hold every class
(docs/scoring.md); `advantage_scoring` says which ("matched" or "raw"), and `relabelled` is True when raw and
matched headline scores differ by more than RELABEL_GAP. Multi-class also gets `advantage_macro_f1`. Under a pure
eps-label-DP class-label release (`fedsim.attacks.public`) the result carries `accuracy_bound`, `advantage_bound`
and `exceeds_bound` (`fedsim.attacks.bound`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from fedsim.attacks.base import AttackerKnowledge, AttackResult, ParamValue
from fedsim.attacks.baselines import HEADLINE_METRIC, compute_references
from fedsim.attacks.bound import accuracy_bound, exceeds_bound
from fedsim.attacks.public import public_defense
from fedsim.errors import UserError, check
from fedsim.metrics import attack_metrics
from fedsim.reference_fits import Reference
from fedsim.registry import ATTACKS
from fedsim.rundir import PartyView
from fedsim.streams import AttackStream, Stream

MIN_KNOWN = 10
Metrics = Callable[[str, np.ndarray, np.ndarray], dict[str, float]]  # (task, truth, estimates) -> metrics
RELABEL_GAP = 0.05  # raw and matched headline scores further apart than this: the estimates are relabelled


def known_count(n: int, known_fraction: float | None, known: int | None) -> int:
    """How many labels leak: `known` if given, else max(10, round(fraction * n)); always fewer than n."""
    if known is not None:
        check(not isinstance(known, bool) and known >= 0, f"known must be a whole number >= 0, got {known!r}")
        count = int(known)
    else:
        check(known_fraction is not None, "give a known fraction or a number of known labels")
        check(0 < known_fraction < 1, f"known fraction must be in (0, 1), got {known_fraction}")
        count = max(MIN_KNOWN, int(round(known_fraction * n)))
    check(count < n, f"{count} known labels requested but the party holds only {n} training samples; "
                     f"at least one must stay unknown")
    return count


def evaluate_attack(
    view: PartyView,
    y_true: np.ndarray,
    name: str,
    params: dict[str, ParamValue] | None = None,
    known_fraction: float | None = 0.01,
    known: int | None = None,
    seed: int = 0,
    show_progress: bool = False,
    references: ReferenceCache | None = None,
) -> dict[str, Any]:
    """Run attack `name` on `view` with seeded known labels; score it on the unknown samples only.

    `y_true` are the true training labels aligned with `view.sample_ids`; the attack sees only the known ones.
    `references`: a cache shared by the attacks on one trained model, so its references are fitted once.
    Returns the `fedsim attack` JSON object (docs/CLI.md).
    """
    knowledge = draw_known(view, y_true, known_fraction, known, seed)
    result, out = run_attack(view, name, params, knowledge, seed, show_progress)
    fitted = (references or ReferenceCache()).get(view, knowledge, seed)
    return {**out, **score_attack(view, result, y_true, knowledge, fitted)}


class ReferenceCache:
    """The references of one trained model, per (party, known labels, seed): several attacks share one fit.

    Use one cache per trained model only: the key does not identify the model.
    """

    def __init__(self) -> None:
        self._fitted: dict[tuple, list[Reference]] = {}

    def get(self, view: PartyView, knowledge: AttackerKnowledge, seed: int) -> list[Reference]:
        key = (view.party, np.asarray(knowledge.known_ids).tobytes(), np.asarray(knowledge.known_labels).tobytes(),
               seed)
        if key not in self._fitted:
            self._fitted[key] = compute_references(view, knowledge, seed)
        return self._fitted[key]


def draw_known(view: PartyView, y_true: np.ndarray, known_fraction: float | None, known: int | None,
               seed: int) -> AttackerKnowledge:
    """The leaked labels: `known_count` training samples drawn by seed from the truth."""
    y_true = np.asarray(y_true, dtype=np.float64)
    check(len(y_true) == len(view.sample_ids),
          f"{len(y_true)} true labels for {len(view.sample_ids)} samples in the party's view")
    n_known = known_count(len(y_true), known_fraction, known)
    choose = np.random.default_rng([seed, Stream.ATTACK, AttackStream.KNOWN_LABELS])
    known_rows = np.sort(choose.choice(len(y_true), n_known, replace=False))
    return AttackerKnowledge(view.sample_ids[known_rows], y_true[known_rows])


def run_attack(
    view: PartyView,
    name: str,
    params: dict[str, ParamValue] | None,
    knowledge: AttackerKnowledge,
    seed: int = 0,
    show_progress: bool = False,
) -> tuple[AttackResult, dict[str, Any]]:
    """Run attack `name` with the given knowledge; needs no truth (a deployment's transcript works).

    Returns the estimates and the unscored part of the `fedsim attack` JSON object.
    """
    attack_cls = ATTACKS.get(name)
    if view.task not in attack_cls.tasks:
        raise UserError(f"attack {name!r} supports {'/'.join(attack_cls.tasks)}; this transcript is {view.task}")
    attack = attack_cls(params, show_progress=show_progress)
    n_known = len(knowledge.known_ids)
    check(n_known < len(view.sample_ids), f"{n_known} known labels but the party holds only "
                                          f"{len(view.sample_ids)} training samples; at least one must stay unknown")
    if attack_cls.needs_known_labels:
        check(n_known >= attack_cls.min_known,
              f"attack {name!r} needs at least {attack_cls.min_known} known labels, got {n_known}")
    start = time.perf_counter()
    result = attack.run(view, knowledge, np.random.default_rng([seed, Stream.ATTACK, AttackStream.RUN]))
    attack_s = time.perf_counter() - start
    rows = view.rows_of(np.asarray(result.ids))
    if np.intersect1d(rows, view.rows_of(knowledge.known_ids)).size:
        raise RuntimeError(f"attack {name!r} returned estimates for known samples")
    out = {"attack": name, "params": attack.params.model_dump(), "known_labels": n_known, "n_attacked": len(rows),
           **result.info, "timing": {"attack_s": attack_s}}
    return result, out


def score_attack(view: PartyView, result: AttackResult, y_true: np.ndarray, knowledge: AttackerKnowledge,
                 references: list[Reference] | None = None,
                 metrics_of: Metrics = attack_metrics) -> dict[str, Any]:
    """Metrics of the estimates against the true labels (aligned with `view.sample_ids`), attacked samples only.

    With `references` (`compute_references` on the same knowledge): their metrics on the same samples, and the
    `advantage` of the estimates and of each read-out over the best features-only reference. `metrics_of`:
    `attack_metrics` or a call of it elsewhere (`fedsim attack` computes them where scikit-learn is loaded).
    """
    rows = view.rows_of(np.asarray(result.ids))
    truth = np.asarray(y_true, dtype=np.float64)[rows]
    out: dict[str, Any] = {"metrics": metrics_of(view.task, truth, result.estimates)}
    if view.task == "regression" and len(knowledge.known_labels):
        out["baseline_mean_mse"] = float(np.mean((truth - knowledge.known_labels.mean()) ** 2))
    if result.readouts:
        out["readouts"] = {k: metrics_of(view.task, truth, v) for k, v in result.readouts.items()}
    if references:
        scored = {r.name: {"uses": r.uses, "features_only": r.features_only,
                           **metrics_of(view.task, truth, r.predictions[rows])} for r in references}
        matched = map_learnable(view, knowledge)
        best = best_features_only(view.task, scored, matched)
        out["references"] = scored
        if best is not None:
            out["advantage_reference"] = best
            for metrics in [out["metrics"], *out.get("readouts", {}).values()]:
                add_advantage(view.task, metrics, scored[best], matched)
            if view.task != "regression":
                out["advantage_scoring"] = "matched" if matched else "raw"
                predictions = next(r.predictions for r in references if r.name == best)[rows]
                out.update(_bound(view, out["metrics"], predictions, scored[best]))
    if view.task != "regression":
        metric = HEADLINE_METRIC[view.task]
        out["relabelled"] = abs(out["metrics"].get(f"matched_{metric}", np.nan)
                                - out["metrics"].get(metric, np.nan)) > RELABEL_GAP
    return out


def map_learnable(view: PartyView, knowledge: AttackerKnowledge) -> bool:
    """Whether the attacker could learn the estimated-to-true class map: its known labels hold every class."""
    if view.task == "regression":
        return False
    k = 2 if view.task == "binary" else int(view.n_classes)
    return len(np.unique(np.asarray(knowledge.known_labels).astype(np.int64))) == k


def headline(task: str, matched: bool) -> str | None:
    """The key the advantage is measured in: the task's headline metric, its matched form when `matched`."""
    metric = HEADLINE_METRIC.get(task)
    return f"matched_{metric}" if matched and metric and task != "regression" else metric


def best_features_only(task: str, scored: dict[str, dict[str, Any]], matched: bool = False) -> str | None:
    """The features-only reference with the highest headline metric on the scored samples (None if none has it)."""
    metric = headline(task, matched)
    honest = {name: r[metric] for name, r in scored.items() if r["features_only"] and metric in r}
    return max(honest, key=honest.__getitem__) if honest else None


def add_advantage(task: str, metrics: dict[str, float], reference: dict[str, Any], matched: bool = False) -> None:
    """`metrics["advantage"]`: the headline metric minus the reference's, when both have it (multi-class also
    `advantage_macro_f1`)."""
    metric = headline(task, matched)
    if metric in metrics and metric in reference:
        metrics["advantage"] = metrics[metric] - reference[metric]
    f1 = "matched_macro_f1" if matched else "macro_f1"
    if task == "multiclass" and f1 in metrics and f1 in reference:
        metrics["advantage_macro_f1"] = metrics[f1] - reference[f1]


def _bound(view: PartyView, metrics: dict[str, float], predictions: np.ndarray,
           reference: dict[str, Any]) -> dict[str, Any]:
    """Under a pure eps-label-DP class-label release: `accuracy_bound` (from the best features-only reference's
    class probabilities on the scored samples), `advantage_bound` (it minus that reference's matched accuracy,
    the scale of a matched advantage in accuracy) and `exceeds_bound` (the attack's matched accuracy above it
    beyond the binomial margin)."""
    epsilon = public_defense(view).class_label_epsilon
    if epsilon is None or "matched_accuracy" not in metrics or "matched_accuracy" not in reference:
        return {}
    bound = accuracy_bound(predictions, epsilon)
    return {"accuracy_bound": bound, "advantage_bound": bound - reference["matched_accuracy"],
            "exceeds_bound": exceeds_bound(metrics["matched_accuracy"], bound, len(predictions))}
