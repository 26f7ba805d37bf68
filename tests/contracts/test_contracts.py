"""Every registered attack, defence and AUC method passes the plugin contracts (fedsim.testing.contracts),
and a third-party plugin gets the same checks through the same public functions."""

from __future__ import annotations

from pathlib import Path

import pytest

from fedsim.evaluation.methods import METHODS
from fedsim.registry import ATTACKS, GRADIENT_DEFENSES, LABEL_DEFENSES
from fedsim.testing.contracts import Case, check_contract, contract_cases

# What an entry cannot run without, beyond its schema's defaults and a budget: a public label range
PUBLIC_RANGE = {"low": -3.0, "high": 3.0}
PARAMS = {
    **{Case("label_defense", name, "regression"): PUBLIC_RANGE
       for name in ("gaussian", "laplace", "rr_on_bins", "unbiased_opt")},
    Case("gradient_defense", "dp_gradient", "regression"): {"label_low": -3.0, "label_high": 3.0},
    Case("label_defense", "round_labels", "regression"): {"step": 0.5},
    Case("gradient_defense", "cae", "multiclass"): {"steps": 50},  # its autoencoder's training steps
}
# Attacks run with few optimisation steps: the contract is about what they return, not how well
SHORT_FIT = {"hidden": 8, "min_steps": 20, "init_steps": 20}
PARAMS.update({Case("attack", name, task): {**SHORT_FIT, **extra} for name, extra in (
    ("lba", {}), ("gradient_inversion", {}), ("residual", {"timed": False})) for task in ATTACKS.get(name).tasks})
PARAMS.update({Case("attack", name, task): params for name, params in (
    ("bayes", {"min_steps": 20}),  # its residual read-out's Adam steps (regression)
    ("best", {"steps": 20}),  # every training-backed candidate's steps
    ("model_completion", {"hidden": 8, "steps": 20}), ("active_model_completion", {"hidden": 8, "steps": 20}),
    ("batch_label_inference", {"steps": 20, "init_steps": 20})) for task in ATTACKS.get(name).tasks})
# What an attack needs in the run it attacks (TrainConfig settings)
RUNS = {"active_model_completion": {"malicious_party": 0, "malicious_update_scale": 2.0}}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("contracts")


# `best` on regression runs every regression attack's candidate grid (about 40 s of CPU even at 20 steps):
# checked in the slow run, the fast run keeps its binary and multiclass cases
SLOW = {Case("attack", "best", "regression")}


@pytest.mark.parametrize("case", [pytest.param(c, marks=pytest.mark.slow) if c in SLOW else c
                                  for c in contract_cases()], ids=str)
def test_registered_entry_keeps_its_contract(case: Case, workdir: Path) -> None:
    check_contract(case, workdir, PARAMS.get(case), RUNS.get(case.name))


def test_every_registry_entry_is_a_case() -> None:
    cases = contract_cases()
    for kind, registry in (("attack", ATTACKS), ("label_defense", LABEL_DEFENSES),
                           ("gradient_defense", GRADIENT_DEFENSES), ("auc_method", METHODS)):
        assert {c.name for c in cases if c.kind == kind} == set(registry.names())
    assert Case("attack", "mean", "multiclass") in cases and Case("gradient_defense", "marvell", "binary") in cases


def test_a_third_party_plugin_gets_the_same_checks(example_plugin, workdir: Path) -> None:
    cases = contract_cases(names={"quantile", "round_labels", "hist_coarse"})
    assert {str(c) for c in cases} == {"attack:quantile:regression", "label_defense:round_labels:regression",
                                       "auc_method:hist_coarse:binary"}
    for case in cases:
        check_contract(case, workdir, PARAMS.get(case))


def test_the_checks_catch_a_broken_plugin(example_plugin, workdir: Path, monkeypatch) -> None:
    """Positive controls: an attack that estimates a known sample, or reads the truth, fails its contract."""
    from fedsim import rundir
    from fedsim.attacks.base import AttackResult

    def leaky(self, view, knowledge, rng):
        return AttackResult(view.sample_ids, view.features[:, 0])

    monkeypatch.setattr(example_plugin.QuantileAttack, "run", leaky)
    with pytest.raises(AssertionError, match="samples whose label it knows"):
        check_contract(Case("attack", "quantile", "regression"), workdir)

    def reads_truth(self, view, knowledge, rng):
        rundir.load_truth(Path("anywhere"))

    monkeypatch.setattr(example_plugin.QuantileAttack, "run", reads_truth)
    with pytest.raises(AssertionError, match="read the truth file"):
        check_contract(Case("attack", "quantile", "regression"), workdir)
