"""`fedsim audit train` and `fedsim audit auc`: output, the violation line, bad inputs (one line, exit 2)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fedsim.cli.app import load_command, main
from fedsim.defenses.randomized_response import RandomizedResponse
from fedsim.registry import LABEL_DEFENSES

BINARY = ["--dataset", "synthetic_ctr", "--rows", "600", "--epochs", "2", "--quiet"]
REGRESSION = ["--dataset", "synthetic_regression", "--rows", "200", "--epochs", "1", "--label-defense", "laplace",
              "--epsilon", "1", "--defense-param", "low=0", "--defense-param", "high=30", "--quiet"]
KEYS = {"formal_epsilon", "formal_delta", "empirical_epsilon", "confidence", "canaries", "guesses", "correct",
        "attack", "verdict", "test"}


class NoiselessRR(RandomizedResponse):
    """Test-only broken defence: records its claim but releases the labels unchanged."""

    name = "test_noiseless_rr"

    def apply(self, y, task, rng):
        super().apply(y, task, rng)
        return np.asarray(y)


def test_audit_train_json_is_one_object_with_the_audit_keys(capsys):
    assert main(["audit", "train", *BINARY, "--canaries", "100", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) >= KEYS
    assert out["verdict"] == "no formal claim" and out["formal_epsilon"] is None and out["canaries"] == 100
    assert out["empirical_epsilon"] > 2  # no defence: a positive control


def test_a_violation_is_said_on_the_first_line_and_exits_zero(capsys, monkeypatch):
    monkeypatch.setitem(LABEL_DEFENSES._items, NoiselessRR.name, NoiselessRR)
    code = main(["audit", "train", *BINARY, "--label-defense", NoiselessRR.name, "--epsilon", "1",
                 "--canaries", "100"])
    lines = capsys.readouterr().out.splitlines()
    assert code == 0
    assert lines[0].startswith("VIOLATION") and "claimed epsilon 1" in lines[0]
    assert "about 1 in 20" in lines[0] and "--seed" in lines[0] and "--confidence" in lines[0]


def test_audit_auc_human_output(capsys):
    assert main(["audit", "auc", "--synthetic", "breast_cancer", "--method", "hist", "--epsilon", "1",
                 "--canaries", "200"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(("consistent", "VIOLATION")) and "canaries 200" in lines[1]


def test_audit_auc_takes_the_release_options_of_fedsim_auc(capsys):
    """One option set: every `fedsim auc` setting of the release itself is an `audit auc` option (derived
    from EvalConfig); only what post-processes, repeats or records the release is left out, with a reason."""
    from fedsim.cli.audit import NOT_AUDITED
    from fedsim.config import EvalConfig, settings

    audit_flags = {p.name for p in load_command("audit").commands["auc"].params}
    auc_flags = {p.name for p in load_command("auc").params}
    assert auc_flags - audit_flags == set(NOT_AUDITED)
    assert set(NOT_AUDITED) <= {s.name for s in settings(EvalConfig)}
    assert {"buckets", "secure_aggregation", "min_clients", "quiet"} <= audit_flags
    base = ["audit", "auc", "--synthetic", "breast_cancer", "--canaries", "300", "--json", "--quiet"]
    assert main([*base, "--method", "hist", "--epsilon", "1", "--buckets", "7"]) == 0
    assert json.loads(capsys.readouterr().out)["buckets"] == 7
    assert main([*base, "--method", "hist_gauss", "--epsilon", "2", "--secure-aggregation", "--clients", "10",
                 "--min-clients", "5"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["secure_aggregation"] and out["min_clients"] == 5 and out["clients"] == 10
    assert out["formal_delta"] == 1e-6 and "shares sized for 5 clients" in out["guarantee"]


def test_white_box_audit_of_dp_gradient_reports_both_analyses_and_the_ideal_observer(capsys):
    args = ["--dataset", "synthetic_regression", "--rows", "800", "--epochs", "3", "--gradient-defense", "dp_gradient",
            "--epsilon", "4", "--delta", "1e-5", "--defense-param", "label_low=0", "--defense-param", "label_high=30",
            "--quiet", "--canaries", "500"]
    assert main(["audit", "train", *args, "--auditor", "white-box", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["auditor"] == "white-box" and out["analysis"] == "f-DP, Gaussian-DP family"
    assert out["empirical_epsilon"] == out["fdp_epsilon"] and out["steinke_epsilon"] >= 0
    assert out["ideal_epsilon"] > 0 and out["efficiency"] == pytest.approx(out["fdp_epsilon"] / out["ideal_epsilon"])
    assert out["empirical_epsilon"] > 0.3  # the likelihood ratio sees the canaries through the noise
    assert main(["audit", "train", *args, "--auditor", "white-box"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "white-box auditor" in lines[1] and lines[2].startswith("analyses: f-DP") and "Steinke" in lines[2]
    assert lines[3].startswith("ideal observer:") and "efficiency" in lines[3]


@pytest.mark.parametrize("args,fragment", [
    (["train", *REGRESSION, "--canaries", "500"], "--canaries must be between 1 and"),
    (["train", *REGRESSION, "--canaries", "20", "--canary-values", "-5", "30"], "outside the defence's public clip"),
    (["train", *REGRESSION, "--canaries", "20", "--attack", "norm_scoring"], "attacks for regression:"),
    (["train", *REGRESSION, "--canaries", "20", "--confidence", "1.5"], "0 < confidence < 1"),
    (["train", *BINARY, "--canaries", "20", "--auditor", "white-box"], "needs a defence with a formal claim"),
    (["train", *BINARY, "--canaries", "20", "--canary-classes", "3"], "need a multiclass task"),
    (["train", *REGRESSION, "--canaries", "20", "--auditor", "grey-box"], "--auditor must be one of"),
    (["auc", "--synthetic", "breast_cancer", "--method", "hist", "--epsilon", "1", "--confidence", "0"],
     "0 < confidence < 1"),
    (["auc", "--synthetic", "breast_cancer", "--method", "exact"], "nothing to audit"),
    (["auc", "--data", "{nolabel}", "--method", "hist", "--epsilon", "1"], "--label-col 'label' is not a column"),
    (["auc", "--synthetic", "breast_cancer", "--method", "hist", "--epsilon", "1", "--curves"], "No such option"),
    (["auc", "--synthetic", "breast_cancer", "--method", "rr", "--epsilon", "1", "--min-clients", "2"],
     "--min-clients applies with --secure-aggregation only"),
    (["auc", "--synthetic", "breast_cancer", "--method", "rr", "--epsilon", "1", "--secure-aggregation",
      "--clients", "3"], "--secure-aggregation needs an integer histogram"),
    (["auc", "--synthetic", "breast_cancer", "--method", "dpauc", "--epsilon", "1", "--buckets", "10"],
     "drop --buckets"),
])
def test_bad_inputs_are_one_line_exit_two_and_write_nothing(capsys, tmp_path, monkeypatch, args, fragment):
    nolabel = tmp_path / "scores.csv"
    nolabel.write_text("score,y\n0.1,1\n0.5,0\n")
    monkeypatch.chdir(tmp_path)
    assert main(["audit", *[a.format(nolabel=nolabel) for a in args]]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1 and fragment in captured.err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scores.csv"]


@pytest.mark.parametrize("command", ["train", "auc"])
def test_audit_help_fits_80_columns_and_describes_every_flag(capsys, monkeypatch, command):

    monkeypatch.setenv("COLUMNS", "80")
    assert main(["audit", command, "--help"]) == 0
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) <= 80, out
    assert "\\[" not in out
    click_command = load_command("audit").commands[command]
    for param in click_command.params:
        assert param.help, f"fedsim audit {command}: {param.name} has no help text"
