"""k-ary canaries (issue 23, section 2): a uniform secret among k public classes, the f-DP one-run analysis with
an alphabet of k (Mahloujifar, Melis & Chaudhuri), k-ary randomised response audited alone and in training."""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_audit import exceed_limit

from fedsim.audit.mechanism import audit_label_mechanism
from fedsim.audit.report import STEINKE_BINARY, audit_guesses_report, class_guesses, secret_bits
from fedsim.audit.training import audit_training
from fedsim.cli.app import main
from fedsim.cli.audit import summary
from fedsim.config import TrainConfig
from fedsim.defenses.randomized_response import RandomizedResponse
from fedsim.privacy.fdp import fdp_lower_bound, rejects
from fedsim.privacy.mechanisms import randomized_response, rr_keep_probability
from fedsim.streams import AuditStream, Stream

CANARIES, CLASSES, AUDITS = 1000, 10, 20
MULTICLASS = ["--dataset", "synthetic_multiclass", "--rows", "600", "--epochs", "1", "--quiet"]


class DoubleEpsilonKaryRR(RandomizedResponse):
    """Bug: k-ary RR whose keep probability is that of 2 eps; the ledger records eps."""

    name = "bug_kary_rr_double_epsilon"

    def apply(self, y, task, rng):
        self.ledger.randomized_response(self.epsilon, CLASSES, what="every label once")
        return randomized_response(np.asarray(y, dtype=np.int64), 2 * self.epsilon, CLASSES, rng)


@pytest.mark.parametrize("eps,ceiling", [(2.0, 1.87), (4.0, 3.82)])
def test_the_fdp_bound_at_rr_s_expected_count_meets_table_c(eps, ceiling):
    """audit-ceilings.txt table C (k-ary RR, m = 1000, all guessed): the bound at the expected number right."""
    right = round(CANARIES * rr_keep_probability(eps, CLASSES))
    assert fdp_lower_bound("dp", CANARIES, CANARIES, right, 0.95, k=CLASSES) == pytest.approx(ceiling, abs=0.05)


def test_the_alphabet_size_reaches_the_analysis():
    """451 of 1000 right is chance-level for a coin but far above the 1/10 of a 10-ary guess."""
    assert fdp_lower_bound("dp", CANARIES, CANARIES, 451, 0.95) == 0.0
    assert fdp_lower_bound("dp", CANARIES, CANARIES, 451, 0.95, k=CLASSES) > 1.5
    assert rejects("dp", 1.5, 0.0, CANARIES, CANARIES, 451, 0.95, CLASSES)
    assert not rejects("dp", 1.5, 0.0, CANARIES, CANARIES, 451, 0.95)


def test_secret_bits_keep_the_coin_draws_and_spread_over_k_classes():
    coin = np.random.default_rng([7, Stream.AUDIT, AuditStream.SECRET_BITS]).integers(0, 2, 500)
    assert np.array_equal(secret_bits(500, 7), coin) and np.array_equal(secret_bits(500, 7, 2), coin)
    secrets = secret_bits(CANARIES, 7, CLASSES)
    assert set(secrets.tolist()) == set(range(CLASSES))


def test_class_guesses_are_argmax_with_the_margin_or_an_abstention():
    guess, score = class_guesses(np.array([[0.1, 0.7, 0.2, 9.0], [0.5, 0.4, 0.1, 9.0]]), 3)
    assert guess.tolist() == [1, 0] and score == pytest.approx([0.5, 0.1])  # column 3 is not a canary class
    guess, score = class_guesses(np.array([2.0, 4.0, np.nan]), 3)
    assert guess[:2].tolist() == [2, 0] and score[:2].tolist() == [1.0, 0.0] and np.isnan(score[2])


@pytest.mark.parametrize("eps", [1.0, 2.0])
def test_correct_kary_rr_is_rejected_at_most_as_often_as_the_confidence_allows(eps):
    """20 audits of 1000 10-ary canaries: violations within the binomial margin; not vacuous (>= 0.6 eps;
    table C's ceiling with every canary guessed: 0.84 at eps 1, 1.87 at eps 2)."""
    out = [audit_label_mechanism(RandomizedResponse(eps), "multiclass", None, CANARIES, seed=s,
                                 canary_classes=CLASSES) for s in range(AUDITS)]
    assert sum(o["verdict"] == "violation" for o in out) <= exceed_limit(AUDITS)
    assert np.mean([o["empirical_epsilon"] for o in out]) >= 0.6 * eps
    first = out[0]
    # rr declares its law: the guess count is planned from the claim (all canaries for k-ary RR at eps 1, 2)
    assert first["canary_classes"] == CLASSES and first["guesses"] == CANARIES
    assert first["steinke_epsilon"] is None and first["steinke_reason"] == STEINKE_BINARY
    assert 0.6 * eps <= first["ideal_epsilon"] <= eps


@pytest.mark.parametrize("eps", [1.0, 2.0])
def test_kary_rr_with_the_keep_probability_of_two_eps_is_a_violation(eps):
    verdicts = [audit_label_mechanism(DoubleEpsilonKaryRR(eps), "multiclass", None, CANARIES, seed=s,
                                      canary_classes=CLASSES)["verdict"] for s in range(5)]
    assert verdicts.count("violation") >= 4


def test_the_gaussian_family_has_no_kary_ideal_and_the_summary_says_so():
    secrets = secret_bits(200, 0, 3)
    report = audit_guesses_report(secrets, secrets, np.zeros(200), 0.95, 2.0, 1e-5, "test", family="gdp",
                                  classes=3)
    assert report["ideal_epsilon"] is None and "Gaussian-DP" in report["ideal_reason"]
    report["guarantee"] = "test"
    lines = summary(report)
    assert "Steinke-Nasr-Jagielski n/a" in lines[2] and lines[3].startswith("ideal observer: n/a")


def test_kary_mechanism_audit_refuses_a_binary_task_and_canary_values():
    from fedsim.errors import UserError

    for task, values in (("binary", None), ("multiclass", (0.0, 1.0))):
        with pytest.raises(UserError, match="k-ary canaries"):
            audit_label_mechanism(RandomizedResponse(1.0), task, values, 100, canary_classes=3)


@pytest.mark.parametrize("auditor", ["black-box", "white-box"])
def test_training_audit_with_kary_canaries_on_rr(auditor):
    """synthetic_multiclass (5 classes), 5-ary canaries, rr at eps 2: the audit runs, reports k, and its verdict
    matches the claim (correct rr) with a bound that sees the leak."""
    config = TrainConfig(dataset="synthetic_multiclass", rows=1500, epochs=2, label_defense="rr", epsilon=2.0,
                         seed=0)
    out = audit_training(config, canaries=300, seed=0, canary_classes=5, auditor=auditor)
    assert out["canary_classes"] == 5 and out["canary_values"] == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert out["verdict"] == "consistent" and 0.5 < out["empirical_epsilon"] <= 2.0
    assert out["steinke_epsilon"] is None and out["ideal_epsilon"] is not None


def test_cli_kary_audit_prints_the_classes(capsys):
    assert main(["audit", "train", *MULTICLASS, "--canaries", "100", "--canary-classes", "3", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["canary_classes"] == 3 and out["verdict"] == "no formal claim" and out["steinke_epsilon"] is None


@pytest.mark.parametrize("args,fragment", [
    (["--canary-classes", "6"], "exceeds the task's 5 classes"),
    (["--canary-classes", "3", "--canary-values", "0", "2"], "drop --canary-values"),
    (["--canary-classes", "3", "--auditor", "white-box", "--gradient-defense", "grad_perturb", "--epsilon", "2"],
     "reads released labels"),
])
def test_bad_kary_inputs_are_one_line_exit_two(capsys, args, fragment):
    assert main(["audit", "train", *MULTICLASS, "--canaries", "100", *args]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1 and fragment in captured.err
