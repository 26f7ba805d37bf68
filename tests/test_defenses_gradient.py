"""Gradient defences (dp_gradient norms / noise / epsilon, heuristics), top-model DP-SGD, bad input via the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from fedsim_fixtures import small_config

from fedsim.assembly import resolve_defenses
from fedsim.cli.app import main
from fedsim.defenses import GRADIENT_DEFENSES, LABEL_DEFENSES
from fedsim.defenses.dp_gradient import clip_rows
from fedsim.defenses.gradient_noise import sparsify
from fedsim.defenses.marvell import solve_marvell, sum_kl
from fedsim.errors import UserError
from fedsim.privacy.ledger import PrivacyLedger
from fedsim.protocol import GradientContext, TrainingPlan
from fedsim.training import train

PLAN = TrainingPlan("regression", 1000, 50, 4, 20, 2, (8, 8))


def context(rows: torch.Tensor, targets: torch.Tensor | None = None) -> GradientContext:
    n = rows.shape[0]
    return GradientContext(0, 0, 0, torch.arange(n), torch.zeros(n, 1) if targets is None else targets, n)


def gradient_defense(name, task="regression", epsilon=None, delta=None, **params):
    defense = GRADIENT_DEFENSES.get(name).from_config(task, epsilon, delta, params)
    defense.prepare(PLAN, np.random.default_rng(0))
    return defense


def test_clip_rows_bounds_every_row_and_keeps_small_ones():
    rows = torch.randn(500, 6) * torch.logspace(-2, 2, 500)[:, None]
    clipped = clip_rows(rows, 1.5)
    assert torch.all(clipped.norm(dim=1) <= 1.5 + 1e-5)
    small = rows.norm(dim=1) <= 1.5
    assert torch.allclose(clipped[small], rows[small])


def test_dp_gradient_pre_noise_norms_and_noise_std(monkeypatch):
    defense = gradient_defense("dp_gradient", sigma=2.0, clip=0.5, label_low=0.0, label_high=1.0, delta=1e-5)
    rows = torch.randn(4000, 8) * 10
    seen = {}
    real_noise = defense.noise

    def spy(shape, std, laplace=False):
        seen["std"] = std
        return real_noise(shape, std, laplace)

    monkeypatch.setattr(defense, "noise", spy)
    grad = rows / 4000
    out = defense(grad, context(rows)) * 4000
    pre_noise = clip_rows(rows, 0.5)
    assert torch.all(pre_noise.norm(dim=1) <= 0.5 + 1e-5)
    assert seen["std"] == pytest.approx(2.0 * 0.5)
    assert (out - pre_noise).std().item() == pytest.approx(1.0, rel=0.03)
    assert abs((out - pre_noise).mean().item()) < 0.02


def test_dp_gradient_epsilon_is_the_accountants_for_every_participation():
    defense = gradient_defense("dp_gradient", epsilon=3.0, delta=1e-5, label_low=0.0, label_high=1.0)
    claim = defense.privacy()
    count = (PLAN.parties + 1) * PLAN.epochs
    expected = PrivacyLedger().gaussian(defense.sigma / 2, count).epsilon(1e-5)
    assert claim.epsilon == pytest.approx(expected, rel=1e-12)
    assert 3.0 - 0.02 <= claim.epsilon <= 3.0
    assert claim.details["ledger"]["subsampling_amplification"] is False
    fixed = gradient_defense("dp_gradient", sigma=defense.sigma, delta=1e-5, label_low=0.0, label_high=1.0)
    assert fixed.privacy().epsilon == pytest.approx(claim.epsilon)


def test_dp_gradient_run_reports_its_ledger_and_trains():
    config = small_config(rows=300, epochs=2, gradient_defense="dp_gradient", epsilon=8.0, delta=1e-5,
                          defense_params={"label_low": 0.0, "label_high": 30.0, "clip": 5.0})
    result = train(config, record=False)
    privacy = result.to_json()["privacy"]
    assert 7.98 <= privacy["epsilon"] <= 8.0 and privacy["delta"] == 1e-5
    assert np.isfinite(result.metrics["mse"])


@pytest.mark.parametrize(("name", "params"), [
    ("gaussian_noise", {"ratio": 0.5}), ("laplace_noise", {"scale": 0.1}), ("max_norm", {}),
    ("sparsify", {"fraction": 0.5, "error_feedback": True}), ("label_extension", {})])
def test_heuristics_report_no_formal_guarantee(name, params):
    hook = "label_defense" if name in LABEL_DEFENSES else "gradient_defense"
    config = small_config(rows=200, epochs=1, defense_params=params, **{hook: name})
    privacy = train(config, record=False).to_json()["privacy"]
    assert privacy["epsilon"] is None and privacy["delta"] is None
    assert privacy["guarantee"].startswith("no formal guarantee")


def test_laplace_noise_has_the_requested_std():
    defense = gradient_defense("laplace_noise", scale=0.3)
    rows = torch.zeros(2000, 16)
    out = defense(rows, context(rows))
    assert out.std().item() == pytest.approx(0.3 / 2000, rel=0.03)


def test_max_norm_equalises_expected_squared_norms():
    defense = gradient_defense("max_norm")
    base = torch.randn(5, 6) * torch.tensor([0.1, 0.5, 1.0, 2.0, 4.0])[:, None]
    draws = torch.stack([defense(base, context(base)) * 5 for _ in range(4000)])
    target = (base * 5).norm(dim=1).max() ** 2
    sq = (draws**2).sum(dim=2).mean(dim=0)
    assert torch.allclose(sq, target.expand(5), rtol=0.1)
    cos = torch.nn.functional.cosine_similarity(draws[0], base * 5, dim=1).abs()
    assert torch.allclose(cos, torch.ones(5), atol=1e-4)  # directions kept up to sign


def test_sparsify_keeps_the_largest_and_error_feedback_keeps_the_rest():
    values = torch.randn(40, 10)
    kept = sparsify(values, 0.75)
    assert int((kept != 0).sum()) == 100
    assert kept.abs().min() == 0 and values.abs()[kept != 0].min() >= values.abs()[kept == 0].max()
    defense = gradient_defense("sparsify", fraction=0.75, error_feedback=True)
    rows = torch.randn(40, 10)
    out = defense(rows / 40, context(rows)) * 40
    assert torch.allclose(defense.residual[0][:40] + out, rows, atol=1e-5)


def test_marvell_meets_the_power_budget_and_lowers_kl():
    u, v, g, p, d = 0.2, 0.3, 4.0, 0.2, 8
    lam = solve_marvell(u, v, g, p, d, power=1.0 * g)
    weights = np.array([1 - p, (1 - p) * (d - 1), p, p * (d - 1)])
    assert weights @ lam <= g * (1 + 1e-6)
    assert sum_kl(lam, u, v, g, d) < sum_kl(np.zeros(4), u, v, g, d)
    defense = gradient_defense("marvell", task="binary", strength=2.0)
    rows = torch.randn(64, 8)
    targets = (torch.arange(64) % 4 == 0).float()[:, None]
    assert not torch.allclose(defense(rows, context(rows, targets)), rows)


def test_top_model_dp_is_reported_apart():
    config = small_config(rows=300, epochs=2, delta=1e-5, defense_params={"top_dp_epsilon": 2.0})
    privacy = train(config, record=False).to_json()["privacy"]
    top = privacy["top_model_dp"]
    assert privacy["epsilon"] is None  # the cut gradients are not covered
    assert top["epsilon"] <= 2.0 + 1e-9 and top["epsilon_without_amplification"] > top["epsilon"]


def test_no_defence_keeps_the_plain_hooks():
    from fedsim.protocol import GradientTransform, LabelTransform
    from fedsim.training import resolve_defenses

    label, gradient = resolve_defenses(small_config(), "regression")
    assert type(label) is LabelTransform and type(gradient) is GradientTransform


def test_registries_hold_the_issue_names():
    assert {"laplace", "gaussian", "rr_on_bins", "unbiased_opt", "rr", "rr_with_prior"} <= set(LABEL_DEFENSES.names())
    assert {"dp_gradient", "gaussian_noise", "laplace_noise", "max_norm", "sparsify", "marvell"} <= set(
        GRADIENT_DEFENSES.names())
    assert "label_extension" in LABEL_DEFENSES and "label_extension" not in GRADIENT_DEFENSES  # one registration


def test_a_defence_named_under_the_other_hook_is_refused_with_the_flag_it_needs():
    with pytest.raises(UserError, match="^--gradient-defense label_extension: label_extension is a label defence; "
                                        "use --label-defense label_extension$"):
        resolve_defenses(small_config(gradient_defense="label_extension"), "regression")
    with pytest.raises(UserError, match="^--label-defense dp_gradient: .* use --gradient-defense dp_gradient$"):
        resolve_defenses(small_config(label_defense="dp_gradient", epsilon=1.0), "regression")


BASE = ["train", "--dataset", "synthetic_regression", "--rows", "200", "--epochs", "1", "--quiet", "--json"]
BAD = {
    "epsilon zero": (["--label-defense", "laplace", "--epsilon", "0", "--defense-param", "low=0",
                      "--defense-param", "high=1"], "epsilon must be a finite number > 0"),
    "epsilon negative": (["--label-defense", "rr_on_bins", "--epsilon", "-1", "--defense-param", "low=0",
                          "--defense-param", "high=1"], "epsilon must be a finite number > 0"),
    "epsilon infinite": (["--label-defense", "laplace", "--epsilon", "inf", "--defense-param", "low=0",
                          "--defense-param", "high=1"], "epsilon must be a finite number > 0"),
    "epsilon missing": (["--label-defense", "laplace", "--defense-param", "low=0", "--defense-param", "high=1"],
                        "epsilon is required"),
    "delta one": (["--label-defense", "gaussian", "--epsilon", "1", "--delta", "1", "--defense-param", "low=0",
                   "--defense-param", "high=1"], "0 < delta < 1"),
    "delta zero": (["--gradient-defense", "dp_gradient", "--epsilon", "1", "--delta", "0",
                    "--defense-param", "label_low=0", "--defense-param", "label_high=1"], "0 < delta < 1"),
    "low >= high": (["--label-defense", "laplace", "--epsilon", "1", "--defense-param", "low=2",
                     "--defense-param", "high=2"], "low < high"),
    "no bounds": (["--label-defense", "laplace", "--epsilon", "1"], "needs clip bounds"),
    "binary-only on regression": (["--label-defense", "rr", "--epsilon", "1"], "binary or multiclass tasks only"),
    "marvell on regression": (["--gradient-defense", "marvell"], "binary tasks only"),
    "unknown label defence": (["--label-defense", "laplacian", "--epsilon", "1"], "unknown label defence"),
    "unknown gradient defence": (["--gradient-defense", "noise"], "unknown gradient defence"),
    "unknown parameter": (["--gradient-defense", "max_norm", "--defense-param", "clip=1"],
                          "unknown --defense-param 'clip'"),
    "parameter without defence": (["--defense-param", "sigma=1"], "unknown --defense-param 'sigma'"),
    "bad parameter value": (["--gradient-defense", "sparsify", "--defense-param", "fraction=1.5"], "fraction"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_defence_input_is_one_line_exit_2(capsys, tmp_path, case):
    args, message = BAD[case]
    out_dir = tmp_path / "t"
    code = main([*BASE, *args, "--transcript", str(out_dir)])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1, err
    assert message in err
    assert not out_dir.exists()


def test_regression_only_defence_on_binary_task(capsys):
    code = main(["train", "--dataset", "synthetic_ctr", "--rows", "200", "--epochs", "1", "--quiet",
                 "--label-defense", "laplace", "--epsilon", "1", "--defense-param", "low=0",
                 "--defense-param", "high=1"])
    assert code == 2 and "regression tasks only" in capsys.readouterr().err


def test_cli_json_privacy_section(capsys):
    code = main([*BASE, "--label-defense", "rr_on_bins", "--epsilon", "2", "--defense-param", "low=0",
                 "--defense-param", "high=30"])
    privacy = json.loads(capsys.readouterr().out)["privacy"]
    assert code == 0
    assert privacy["label_defense"] == "rr_on_bins" and privacy["epsilon"] == pytest.approx(2.0)
    assert privacy["delta"] == 0.0 and "label-DP" in privacy["guarantee"]


@pytest.mark.parametrize(("name", "task", "kind", "epsilon", "delta", "params"), [
    ("laplace", "regression", "label", 1.0, None, {"low": 0.0, "high": 1.0}),
    ("rr", "binary", "label", 1.0, None, {}),
    ("dp_gradient", "binary", "gradient", 1.0, 1e-5, {}),
])
def test_a_formal_claim_before_the_mechanism_ran_is_an_error(name, task, kind, epsilon, delta, params):
    registry = LABEL_DEFENSES if kind == "label" else GRADIENT_DEFENSES
    with pytest.raises(RuntimeError, match="once the mechanism has run"):
        registry.get(name).from_config(task, epsilon, delta, params).privacy()
