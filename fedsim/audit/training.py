"""`fedsim audit train`: a one-run canary audit of a training run and its defence.

1. Canaries: m training rows (seeded; default min(1000, half the rows)) whose labels are set, each by its
   own secret fair coin, to one of two public values: 0/1 for binary tasks; for regression the ends of the
   defence's public clip range, two values the user names (inside that range), or, when the defence has no
   public range, the 5% and 95% quantiles of the other training labels (chosen before the coins).
   With `canary_classes` k > 2 (multiclass), each canary's label is a uniform secret among the classes 0..k-1.
2. One training run on the planted dataset, through `fedsim.training.train`.
3. The curious feature party attacks its own view; its known labels are non-canary rows only.
4. The canaries are ranked by the attack's estimate and guessed (`fedsim.audit.report`); the guesses give
   the one-run lower bound on epsilon (`fedsim.privacy.audit_bound`), compared with the run's formal claim.
   k-ary canaries: the guess is the argmax of the attack's scores over the k canary classes, confidence the
   top score minus the second (white-box, rr: the released class), the bound f-DP with an alphabet of k.

Default attacks (measured with `python -m fedsim.experiments.bench_audit`): regression `residual` (the
cut gradient is linear in the released label for MSE, and the residual decomposition reads it back), binary
and multiclass `direction_scoring` (under BCE the gradient's sign along the top model's gradient is the
released label's). `AUDIT_ATTACK_PARAMS` are the audit's defaults for an attack's parameters (the user's
`--attack-param` wins): `residual` reads every recorded epoch (`epochs=all`), not only the last as when it
scores leakage. A label-noise defence releases each label once, so every epoch's rows carry the same released
value and the joint read-back over all of them is sharper. Laplace labels on synthetic_regression, 1,000
canaries, seeds 0-19 (`fedsim.experiments.bench_audit --only laplace`): eps_emp 0.82 / 1.70 / 3.40 at eps
1 / 2 / 4 against 0.79 / 1.50 / 2.67 reading the last epoch (the ideal observer: 0.83 / 1.76 / 3.44).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

from fedsim.assembly import load_dataset, resolve_defenses
from fedsim.attacks import ATTACKS, AttackerKnowledge
from fedsim.attacks.base import ParamValue
from fedsim.attacks.evaluate import known_count, run_attack
from fedsim.audit.ideal import IdealLaw, declared_law, law_of
from fedsim.audit.report import (
    audit_guesses_report,
    audit_statistic,
    choose_canaries,
    class_guesses,
    privacy_family,
    secret_bits,
)
from fedsim.audit.whitebox import AUDITORS, WhiteBoxRecorder, whitebox_law
from fedsim.config import TrainConfig
from fedsim.data import VerticalDataset
from fedsim.errors import UserError, check
from fedsim.privacy.audit_bound import check_confidence
from fedsim.protocol import GradientTransform, LabelTransform
from fedsim.run_result import TrainResult
from fedsim.streams import AttackStream, Stream
from fedsim.training import train

DEFAULT_ATTACKS = {"regression": "residual", "binary": "direction_scoring", "multiclass": "direction_scoring"}
AUDIT_ATTACK_PARAMS: dict[str, dict[str, ParamValue]] = {"residual": {"epochs": "all"}}  # module docstring
MAX_CANARIES = 1000
# the defence parameters that name a public label range, per defence family
PUBLIC_RANGES = (("low", "high"), ("label_low", "label_high"))


def default_canaries(n_train: int) -> int:
    return max(1, min(MAX_CANARIES, n_train // 2))


def public_label_range(config: TrainConfig) -> tuple[float, float] | None:
    """The defence's public label clip range, when its parameters give one."""
    params = config.defense_params
    for low, high in PUBLIC_RANGES:
        if low in params and high in params:
            return float(params[low]), float(params[high])
    return None


def canary_values(config: TrainConfig, dataset: VerticalDataset, others: np.ndarray,
                  values: tuple[float, float] | None) -> tuple[float, float]:
    """The two public label values a canary can take (module docstring, step 1)."""
    if dataset.task == "binary":
        check(values is None or tuple(values) == (0.0, 1.0),
              f"a binary task's canaries take the labels 0 and 1; got canary values {values}")
        return 0.0, 1.0
    if dataset.task == "multiclass":  # two public classes (indices); default the first two
        low, high = (0.0, 1.0) if values is None else (float(values[0]), float(values[1]))
        valid = {float(k) for k in range(dataset.n_classes)}
        check(low in valid and high in valid and low != high,
              f"a multiclass task's canaries take two distinct class indices in 0..{dataset.n_classes - 1}; got "
              f"canary values {low:g} and {high:g}")
        return low, high
    clip = public_label_range(config)
    if values is None:
        if clip is not None:
            return clip
        low, high = np.quantile(dataset.y_train[others], [0.05, 0.95])
        check(low < high, "the training labels have no spread: give two canary values")
        return float(low), float(high)
    low, high = float(values[0]), float(values[1])
    check(low < high, f"canary values need low < high, got {low} and {high}")
    if clip is not None:
        check(clip[0] <= low and high <= clip[1],
              f"canary values {low:g} and {high:g} lie outside the defence's public clip range "
              f"[{clip[0]:g}, {clip[1]:g}]; give values inside it")
    return low, high


def class_statistic(estimates: np.ndarray, low: int, high: int) -> np.ndarray:
    """A multiclass attack's output as one number per row, larger for the `high` canary class: the difference
    of the two classes' scores, or +1 / -1 / 0 for estimated class indices (NaN, no estimate, stays NaN). A
    function of the attack's output alone, so the bound stays valid (the guesses only rank rows by it)."""
    if estimates.ndim == 2:
        return estimates[:, high] - estimates[:, low]
    return np.where(np.isnan(estimates), np.nan, (estimates == high).astype(np.float64) - (estimates == low))


def plant(dataset: VerticalDataset, rows: np.ndarray, labels: np.ndarray) -> VerticalDataset:
    """A copy of `dataset` whose training labels at `rows` are replaced by `labels`."""
    y = dataset.y_train.copy()
    y[rows] = labels
    return dataclasses.replace(dataset, y_train=y)


def choose_attack(name: str | None, task: str) -> str:
    name = DEFAULT_ATTACKS[task] if name is None else name
    attack_cls = ATTACKS.get(name)
    if task not in attack_cls.tasks:
        valid = ", ".join(n for n in ATTACKS.names() if task in ATTACKS.get(n).tasks)
        raise UserError(f"attack {name!r} applies to {'/'.join(attack_cls.tasks)} tasks, not {task}; "
                        f"attacks for {task}: {valid}")
    return name


def claim_family(label: LabelTransform, gradient: GradientTransform,
                 epochs: int) -> tuple[str, IdealLaw, IdealLaw | None]:
    """The f-DP family of the run's claim, the law of one canary's release (`fedsim.audit.ideal`): the
    defence's own when exactly one defence is configured, else (eps, delta)-DP and its worst case; and the law
    the black-box attacker's score approaches, when one is known: a label mechanism configured alone that
    declares its law (`declared_law`: laplace, gaussian, rr), whose released labels the default attacks read
    back (residual: the released value under MSE; direction_scoring: the released class under BCE). Either law
    only plans the number of guesses and the ideal observer; the bound is valid whatever the attack's score."""
    configured = [d for d in (label, gradient) if type(d) not in (LabelTransform, GradientTransform)]
    if len(configured) != 1:
        return "dp", IdealLaw(), None
    family = privacy_family(configured[0], epochs)
    black_box = declared_law(label) if configured[0] is label else None
    return family, law_of(configured[0], family, epochs), black_box


def check_canary_classes(canary_classes: int, task: str, classes: int | None,
                         values: tuple[float, float] | None) -> None:
    """k-ary canaries need a multiclass task with at least k classes and take the classes 0..k-1 (no
    --canary-values); anything else is one line."""
    check(canary_classes >= 2, f"--canary-classes must be >= 2, got {canary_classes}")
    if canary_classes == 2:
        return
    check(task == "multiclass", f"k-ary canaries (--canary-classes {canary_classes}) need a multiclass task, not "
                                f"{task}; use --canary-classes 2")
    check(classes is not None and canary_classes <= classes,
          f"--canary-classes {canary_classes} exceeds the task's {classes} classes; use 2..{classes}")
    check(values is None, f"k-ary canaries take the classes 0..{canary_classes - 1}; drop --canary-values "
                          f"(two canary values are for --canary-classes 2)")


def audit_training(config: TrainConfig, *, attack: str | None = None, canaries: int | None = None,
                   confidence: float = 0.95, seed: int = 0, values: tuple[float, float] | None = None,
                   attack_params: dict[str, ParamValue] | None = None, known_fraction: float = 0.01,
                   party: int = 0, guesses: int | Sequence[int] | None = None,
                   show_progress: bool = False, auditor: str = "black-box",
                   canary_classes: int = 2) -> dict[str, Any]:
    """Plant canaries, train once, attack (or read the label party: white-box), bound epsilon; returns the
    `fedsim audit train --json` object. Every input is checked before the training run."""
    check_confidence(confidence)
    check(auditor in AUDITORS, f"--auditor must be one of {', '.join(AUDITORS)}, got {auditor!r}")
    dataset = load_dataset(config)
    n = dataset.n_train
    m = default_canaries(n) if canaries is None else canaries
    check(1 <= m < n, f"--canaries must be between 1 and {n - 1} (the run has {n} training rows), got {m}")
    check(0 <= party < dataset.parties, f"party must be in 0..{dataset.parties - 1}, got {party}")
    check_canary_classes(canary_classes, dataset.task, dataset.n_classes, values)
    kary = canary_classes > 2
    label_transform, gradient_transform = resolve_defenses(config, dataset.task)
    family, law, black_box_law = claim_family(label_transform, gradient_transform, config.epochs)
    white = auditor == "white-box"
    planning_law = law if white else black_box_law
    if white:
        read = whitebox_law(label_transform, gradient_transform, dataset.task)
        check(not kary or read == "released labels", f"--auditor white-box with k-ary canaries reads released "
                                                     f"labels (rr); this run's law is {read}: use --canary-classes 2")
        check(attack is None and not attack_params, "--attack and --attack-param choose the black-box "
                                                    "distinguisher; the white-box auditor uses the likelihood ratio")
    else:
        name = choose_attack(attack, dataset.task)
        attack_params = {**AUDIT_ATTACK_PARAMS.get(name, {}), **(attack_params or {})}
        ATTACKS.get(name)(attack_params)  # parameter errors before the training run, not after it
    rows = choose_canaries(n, m, seed)
    others = np.setdiff1d(np.arange(n), rows)
    low, high = (0.0, float(canary_classes - 1)) if kary else canary_values(config, dataset, others, values)
    bits = secret_bits(m, seed, canary_classes)
    planted = plant(dataset, rows, bits.astype(np.float64) if kary else np.where(bits == 1, high, low))
    recorders: list[WhiteBoxRecorder] = []

    def record(gradient: GradientTransform) -> GradientTransform:
        recorders.append(WhiteBoxRecorder(gradient, rows, (low, high), read))
        return recorders[-1]

    result = train(config, record=not white, show_progress=show_progress, dataset=planted,
                   wrap_gradient=record if white else None)
    extra: dict[str, Any] = {}
    if white:
        statistic, name = recorders[0].statistic, f"likelihood ratio ({read})"
    else:
        statistic, name, extra = black_box_statistic(
            result, planted, rows, others, name, attack_params=attack_params, known_fraction=known_fraction,
            party=party, seed=seed, show_progress=show_progress)
        extra["attack_params"] = attack_params
        if planted.task == "multiclass" and not kary:
            statistic = class_statistic(statistic, int(low), int(high))
    privacy = result.privacy
    try:
        if kary:
            guess, score = class_guesses(statistic, canary_classes)
            if white:  # the released class, equally confident; a canary no batch held is the least confident
                score = score * recorders[0].seen
            report = audit_guesses_report(bits, guess, score, confidence, privacy.epsilon, privacy.delta, name,
                                          guesses, family=family, auditor=auditor, seed=seed,
                                          classes=canary_classes, law=planning_law)
        else:
            report = audit_statistic(bits, statistic, confidence, privacy.epsilon, privacy.delta, name, guesses,
                                     family=family, auditor=auditor, seed=seed, law=planning_law)
    except RuntimeError as exc:
        raise UserError(str(exc)) from None
    values_planted = [float(c) for c in range(canary_classes)] if kary else [low, high]
    report.update(canary_values=values_planted, party=party, guarantee=privacy.guarantee, test=result.metrics,
                  **extra)
    return report


def black_box_statistic(result: TrainResult, planted: VerticalDataset, rows: np.ndarray, others: np.ndarray,
                        name: str, *, attack_params: dict[str, ParamValue] | None, known_fraction: float, party: int,
                        seed: int, show_progress: bool) -> tuple[np.ndarray, str, dict[str, Any]]:
    """The curious feature party's attack on its own view, per canary: its estimate (one number, or a row of
    class scores for a multiclass attack that gives them; NaN where it gave none) (module docstring)."""
    view = result.party_view(party)
    n_known = known_count(len(others), known_fraction, None)
    choose = np.random.default_rng([seed, Stream.ATTACK, AttackStream.KNOWN_LABELS])
    known = np.sort(choose.choice(others, n_known, replace=False))
    knowledge = AttackerKnowledge(view.sample_ids[known], planted.y_train[known])
    outcome, _ = run_attack(view, name, attack_params, knowledge, seed, show_progress)
    estimates = np.asarray(outcome.estimates, dtype=np.float64)
    estimate = np.full((planted.n_train, *estimates.shape[1:]), np.nan)
    estimate[view.rows_of(np.asarray(outcome.ids))] = estimates
    return estimate[rows], name, {"known_labels": n_known}
