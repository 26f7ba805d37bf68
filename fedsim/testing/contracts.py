"""Contract checks every registered attack, defence and AUC method must pass, fedsim's own or a third party's.

In the style of scikit-learn's `parametrize_with_checks`: `contract_cases()` lists one `Case` per registry
entry (and per task it declares), read from the registries at call time, so a plugin registered through the
public API (`ATTACKS.register`, `LABEL_DEFENSES.register`, `METHODS.add`, ...) is listed like a built-in
one; `check_contract(case, workdir)` runs that entry's checks and raises `AssertionError` naming the broken
promise. A third-party test suite runs them as shown in docs/plugins.md.

The promises:
- attack, on a small recorded transcript of each task it declares (its `truth/` folder deleted and
  `fedsim.rundir.load_truth` made to raise): it runs, returns one estimate for each sample whose label it
  does not know and nothing else, and gives the same estimates twice for one seed;
- label or gradient defence: `from_config` builds it from its schema's defaults (plus the epsilon and delta
  a formal defence needs, and any `params` the caller must give, such as a public label range); an unknown
  parameter is one `UserError` line naming it; after `apply` (label) or `prepare` and one gradient
  (gradient) it has a `privacy()` claim; a formal epsilon is backed by ledger events; one seed gives one
  output;
- AUC method: `run_auc` gives an estimate in [0, 1], a 95% interval around it (or an explicit null), a
  guarantee sentence (formal epsilon, or epsilon null for a release without noise), the same output twice
  for one seed.
"""

from __future__ import annotations

import hashlib
import math
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import torch
from torch import nn

from fedsim import rundir
from fedsim.attacks.base import AttackerKnowledge
from fedsim.config import ModelConfig, TrainConfig
from fedsim.errors import UserError
from fedsim.evaluation.driver import run_auc
from fedsim.evaluation.methods import METHODS
from fedsim.parties import LOSSES, target_tensor
from fedsim.privacy.claims import PrivacyClaim
from fedsim.protocol import GradientContext, GradientTransform, LabelTransform, TrainingPlan
from fedsim.registry import ATTACKS, GRADIENT_DEFENSES, LABEL_DEFENSES, Registry
from fedsim.training import train

KINDS = ("attack", "label_defense", "gradient_defense", "auc_method")
TASK_DATASETS = {"regression": "synthetic_regression", "binary": "synthetic_ctr",
                 "multiclass": "synthetic_multiclass"}
EPSILON, DELTA = 1.0, 1e-5  # given to a defence or AUC method that needs a budget
KNOWN = 0.1  # share of the transcript's samples whose labels the attacker knows
UNKNOWN_PARAM = "no_such_parameter"


@dataclass(frozen=True)
class Case:
    """One registry entry on one task (AUC methods: binary)."""

    kind: str
    name: str
    task: str

    def __str__(self) -> str:
        return f"{self.kind}:{self.name}:{self.task}"


def _registry(kind: str) -> Registry[Any]:
    return {"attack": ATTACKS, "label_defense": LABEL_DEFENSES, "gradient_defense": GRADIENT_DEFENSES,
            "auc_method": METHODS}[kind]


def contract_cases(kinds: tuple[str, ...] = KINDS, names: set[str] | None = None) -> list[Case]:
    """Every registered entry of `kinds` (only `names`, when given) on every task it declares."""
    cases = []
    for kind in kinds:
        registry = _registry(kind)
        for name in registry.names():
            if names is None or name in names:
                cases += [Case(kind, name, task) for task in getattr(registry.get(name), "tasks", ("binary",))]
    return cases


def check_contract(case: Case, workdir: Path, params: dict[str, Any] | None = None,
                   run: dict[str, Any] | None = None) -> None:
    """Run the checks of `case`; `workdir` caches the recorded transcripts between calls, `params` are plugin
    parameters the entry cannot run without (e.g. a defence's public label range; for an AUC method,
    `run_auc` keywords) and `run` the `TrainConfig` settings an attack needs in the run it attacks."""
    if case.kind == "attack":
        check_attack(case.name, case.task, workdir, params, run)
    elif case.kind == "label_defense":
        check_label_defense(case.name, case.task, params)
    elif case.kind == "gradient_defense":
        check_gradient_defense(case.name, case.task, params)
    else:
        check_auc_method(case.name, params)


# -- attacks ---------------------------------------------------------------------------------------------------

def contract_transcript(task: str, workdir: Path, run: dict[str, Any] | None = None) -> Path:
    """A small recorded run of `task` (one feature party; `run`: other `TrainConfig` settings) under `workdir`,
    without its truth/ folder. The true labels stay beside it in `labels.npy`, which only this module reads
    (to build the attacker's knowledge)."""
    settings = {"dataset": TASK_DATASETS[task], "rows": 300, "parties": 1, "epochs": 2, "batch_size": 32,
                "seed": 0, "model": ModelConfig(embedding_dim=4, bottom_hidden=16, top_hidden=16), **(run or {})}
    tag = hashlib.sha256(repr(sorted(settings.items())).encode()).hexdigest()[:12]
    directory = Path(workdir) / f"contract_{task}_{tag}"
    if not (directory / "labels.npy").is_file():
        config = TrainConfig(**settings)
        result = train(config, transcript_dir=directory, overwrite=True, record=True)
        shutil.rmtree(directory / "truth")
        np.save(directory / "labels.npy", result.dataset.y_train)
    return directory


@contextmanager
def truth_forbidden() -> Iterator[None]:
    """Any call of `fedsim.rundir.load_truth` inside fails the contract."""
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the attack read the truth file (fedsim.rundir.load_truth)")

    with mock.patch.object(rundir, "load_truth", refuse):
        yield


def check_attack(name: str, task: str, workdir: Path, params: dict[str, Any] | None = None,
                 run: dict[str, Any] | None = None) -> None:
    """The attack runs on `task`'s transcript, estimates exactly the unknown samples, and repeats itself."""
    directory = contract_transcript(task, workdir, run)
    view = rundir.load_party_view(directory, 0)
    labels = np.load(directory / "labels.npy")
    cls = ATTACKS.get(name)
    known = np.zeros(len(view.sample_ids), dtype=bool)
    known[np.random.default_rng(0).permutation(len(known))[: max(cls.min_known, int(KNOWN * len(known)))]] = True
    low, high = float(labels.min()), float(labels.max())
    knowledge = AttackerKnowledge(view.sample_ids[known], labels[known], (low, high) if task == "regression" else None)
    runs = []
    with truth_forbidden():
        for _ in range(2):
            result = cls(params).run(view, knowledge, np.random.default_rng(7))
            runs.append(result)
    first, again = runs
    ids = np.asarray(first.ids)
    unknown = set(view.sample_ids[~known].tolist())
    assert len(ids) == len(set(ids.tolist())), f"attack {name!r} returned a sample id twice"
    assert set(ids.tolist()) <= unknown, f"attack {name!r} returned estimates for samples whose label it knows"
    assert set(ids.tolist()) == unknown, f"attack {name!r} left {len(unknown) - len(ids)} unknown samples out"
    assert len(first.estimates) == len(ids), f"attack {name!r}: {len(first.estimates)} estimates, {len(ids)} ids"
    np.testing.assert_array_equal(again.ids, first.ids, err_msg=f"attack {name!r}: ids differ for one seed")
    np.testing.assert_array_equal(again.estimates, first.estimates,
                                  err_msg=f"attack {name!r}: estimates differ for one seed")


# -- defences --------------------------------------------------------------------------------------------------

def build_defense(registry: Registry[Any], name: str, task: str,
                  params: dict[str, Any] | None) -> tuple[Any, float | None, float | None]:
    """The defence from its defaults (and `params`) and the budget it took: first none, else (EPSILON, DELTA);
    a defence that builds with neither fails the contract with both one-line errors."""
    cls, errors = registry.get(name), []
    for epsilon, delta in ((None, None), (EPSILON, DELTA)):
        try:
            return cls.from_config(task, epsilon, delta, dict(params or {})), epsilon, delta
        except UserError as exc:
            errors.append(str(exc))
    raise AssertionError(f"{registry.kind} {name!r} does not build from its defaults on {task}: "
                         + " | ".join(errors))


def check_rejects_unknown(registry: Registry[Any], name: str, task: str, params: dict[str, Any] | None) -> None:
    """With the budget it builds with, an unknown parameter is one `UserError` line that names it."""
    _, epsilon, delta = build_defense(registry, name, task, params)
    try:
        registry.get(name).from_config(task, epsilon, delta, {**(params or {}), UNKNOWN_PARAM: 1})
    except UserError as exc:
        message = str(exc)
        assert UNKNOWN_PARAM in message and "\n" not in message, \
            f"{registry.kind} {name!r}: an unknown parameter gives {message!r}, not one line naming it"
        return
    raise AssertionError(f"{registry.kind} {name!r} accepted the unknown parameter {UNKNOWN_PARAM!r}")


def check_claim(kind: str, name: str, claim: Any) -> None:
    """A `PrivacyClaim`; a formal epsilon comes from ledger events, a heuristic says it has no guarantee."""
    assert isinstance(claim, PrivacyClaim), f"{kind} {name!r}: privacy() returned {claim!r}, not a PrivacyClaim"
    if claim.formal:
        assert claim.epsilon is not None and claim.epsilon > 0 and math.isfinite(claim.epsilon), \
            f"{kind} {name!r}: formal epsilon {claim.epsilon!r}"
        ledger = claim.details.get("ledger") or {}
        assert ledger.get("events"), f"{kind} {name!r}: formal epsilon {claim.epsilon} without ledger events"
        assert claim.epsilon <= ledger["epsilon"] * (1 + 1e-9), \
            f"{kind} {name!r}: epsilon {claim.epsilon} above its ledger's {ledger['epsilon']}"
    else:
        assert "no formal guarantee" in claim.guarantee, \
            f"{kind} {name!r}: no epsilon, yet its guarantee does not say 'no formal guarantee'"


def task_labels(task: str, n: int, seed: int = 0) -> np.ndarray:
    """Labels of `task`: regression N(0, 1), binary 0/1, multiclass 0..2."""
    rng = np.random.default_rng(seed)
    if task == "regression":
        return rng.standard_normal(n)
    return rng.integers(0, 2 if task == "binary" else 3, n).astype(np.float64)


def check_label_defense(name: str, task: str, params: dict[str, Any] | None = None) -> None:
    """Builds, refuses an unknown parameter, applies (same seed, same labels) and then states its claim."""
    check_rejects_unknown(LABEL_DEFENSES, name, task, params)
    outputs, claims = [], []
    for _ in range(2):
        defense = build_defense(LABEL_DEFENSES, name, task, params)[0]
        outputs.append(label_step(defense, task))
        claims.append(defense.privacy())
    np.testing.assert_array_equal(outputs[1], outputs[0], err_msg=f"label defence {name!r} differs for one seed")
    check_claim("label defence", name, claims[0])


def label_step(defense: LabelTransform, task: str, n: int = 200) -> np.ndarray:
    """The defence applied to `n` labels of `task` (seeded), as the label party does once before training."""
    y = task_labels(task, n)
    out = np.asarray(defense.apply(y.copy(), task, np.random.default_rng(3)))
    assert len(out) == n, f"label defence {defense.name!r} returned {len(out)} labels for {n}"
    return out


def gradient_step(defense: GradientTransform, task: str, n: int = 64, width: int = 4) -> torch.Tensor:
    """One label-party step through every hook, as `fedsim.parties` runs it: prepare, wrap_top_model,
    training_loss, the cut gradient of the loss, then the defence on that gradient (seeds fixed)."""
    classes = {"regression": 0, "binary": 2, "multiclass": 3}[task]
    plan = TrainingPlan(task, 640, n, 2, 10, 1, (width, width), classes)
    torch.manual_seed(5)
    defense.prepare(plan, np.random.default_rng(5))
    model = defense.wrap_top_model(nn.Linear(2 * width, max(classes, 1) if task == "multiclass" else 1),
                                   2 * width, plan, np.random.default_rng(6))
    inputs = torch.randn(n, 2 * width, generator=torch.Generator().manual_seed(0)).requires_grad_(True)
    targets = target_tensor(task_labels(task, n), task)
    rows = torch.arange(n)
    loss = defense.training_loss(model, inputs, targets, rows, LOSSES[task]())
    (grad,) = torch.autograd.grad(loss, inputs)
    context = GradientContext(0, 0, 0, rows, targets, n)
    return torch.cat([defense(g, context).detach() for g in grad.split(width, dim=1)], dim=1)


def check_gradient_defense(name: str, task: str, params: dict[str, Any] | None = None) -> None:
    """from_config -> prepare / apply -> privacy(): builds, refuses an unknown parameter, repeats itself for
    one seed (numpy and torch seeds fixed) and states its claim. An entry of this registry that transforms
    labels instead (label_extension) is driven through `apply`."""
    check_rejects_unknown(GRADIENT_DEFENSES, name, task, params)
    outputs, claims = [], []
    for _ in range(2):
        defense = build_defense(GRADIENT_DEFENSES, name, task, params)[0]
        if isinstance(defense, GradientTransform):
            outputs.append(gradient_step(defense, task).numpy())
        else:
            assert isinstance(defense, LabelTransform), f"gradient defence {name!r} has neither kind of hook"
            outputs.append(label_step(defense, task))
        claims.append(defense.privacy())
    np.testing.assert_array_equal(outputs[1], outputs[0], err_msg=f"gradient defence {name!r} differs for one seed")
    check_claim("gradient defence", name, claims[0])


# -- AUC methods -----------------------------------------------------------------------------------------------

def check_auc_method(name: str, params: dict[str, Any] | None = None) -> None:
    """`run_auc` gives an estimate in [0, 1], an interval around it or null, a guarantee; one seed, one output.
    A method that needs a budget gets EPSILON, and DELTA too when it refuses to run without one."""
    rng = np.random.default_rng(0)
    labels = (rng.random(400) < 0.4).astype(np.int64)
    scores = 1 / (1 + np.exp(-(rng.standard_normal(400) + labels)))
    epsilon = EPSILON if METHODS.get(name).needs_epsilon else None
    errors = []
    for delta in (None, DELTA):
        try:
            outputs = [run_auc(name, scores, labels, epsilon, delta=delta, seed=4, show_progress=False,
                               **(params or {})) for _ in range(2)]
            break
        except UserError as exc:
            errors.append(str(exc))
    else:
        raise AssertionError(f"AUC method {name!r} does not run with epsilon {epsilon}: " + " | ".join(errors))
    out = outputs[0]
    assert outputs[1] == out, f"AUC method {name!r} differs for one seed"
    assert out["estimate"] is not None and 0 <= out["estimate"] <= 1, f"AUC method {name!r}: estimate {out}"
    interval = out.get("ci95", "missing")
    assert interval is None or (len(interval) == 2 and interval[0] <= out["estimate"] <= interval[1]), \
        f"AUC method {name!r}: ci95 must be [low, high] around the estimate or null, got {interval!r}"
    assert out.get("guarantee"), f"AUC method {name!r} states no guarantee"
    assert out["epsilon"] == epsilon, f"AUC method {name!r} reports epsilon {out['epsilon']}, ran with {epsilon}"
