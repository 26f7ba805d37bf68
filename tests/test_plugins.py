"""Plugin parameter schemas: one-line errors, the same values from every source, the listing commands, the
generated table of docs/plugins.md, and the worked example plugin run end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fedsim.cli.app import main
from fedsim.cli.plugins import DOCS, REGENERATE, catalogue, with_table
from fedsim.errors import UserError
from fedsim.evaluation import run_auc, synthetic_scores
from fedsim.evaluation.methods import METHODS
from fedsim.params import parse_params, summaries, validate_params
from fedsim.registry import ATTACKS, GRADIENT_DEFENSES, LABEL_DEFENSES, Registry


def test_docs_plugin_table_is_current():
    committed = DOCS.read_text()
    assert with_table(committed) == committed, f"docs/plugins.md's plugin table is out of date; run: {REGENERATE}"


def test_every_plugin_has_a_summary_and_described_parameters():
    data = catalogue()
    entries = [*data["attacks"], *data["label_defenses"], *data["gradient_defenses"], data["top_model_dp"],
               *data["auc_methods"]]
    assert {"lba", "laplace", "dp_gradient", "top_dp", "dpauc"} <= {e["name"] for e in entries}
    for entry in entries:
        assert entry["summary"] and "\n" not in entry["summary"], entry["name"]
        assert entry["tasks"], entry["name"]
        for row in entry["params"]:
            assert row["description"] and row["type"], (entry["name"], row["name"])
    assert summaries(ATTACKS)["mean"].startswith("Baseline")


LBA_DEFAULTS = {  # the attacks' `defaults` dicts before the schemas: same defaults, same results
    "surrogate": "mlp", "hidden": 64, "depth": 1, "epochs": "last", "distance": "l2", "lambda_t": 0.01,
    "lambda_kg": 0.05, "lambda_kf": 0.01, "lr": 1e-2, "passes": 1, "batch": 512, "min_steps": 2000, "init": "auto",
    "readout": "dummy", "labels": "free", "timed": False, "init_steps": 300, "init_weight_decay": 1e-2,
    "settle": 1e-4,  # added later (issue 19): early stopping once the estimates settle; settle=0 is the old run
}
OLD_DEFAULTS = {
    "lba": LBA_DEFAULTS,
    "gradient_inversion": {**LBA_DEFAULTS, "lambda_t": 0.0, "lambda_kg": 0.0, "lambda_kf": 0.0, "init": "random"},
    "residual": {**LBA_DEFAULTS, "labels": "projected", "timed": True, "lambda_t": 0.0},
    "model_completion": {"surrogate": "mlp", "hidden": 64, "depth": 1, "steps": 300, "lr": 1e-2,
                         "weight_decay": 1e-2},
    "linear": {"epochs": "last", "mode": "auto"},
    "mean": {}, "norm_scoring": {"epochs": "last"}, "direction_scoring": {"epochs": "last"},
}


@pytest.mark.parametrize("name", sorted(OLD_DEFAULTS))
def test_attack_defaults_are_the_old_defaults(name):
    params = ATTACKS.get(name)().params.model_dump()  # the JSON `params` object of a result
    assert params == OLD_DEFAULTS[name]
    assert list(params) == list(OLD_DEFAULTS[name])  # the JSON `params` object keeps its key order
    assert all(type(params[k]) is type(v) for k, v in OLD_DEFAULTS[name].items())


def test_defence_defaults_are_the_old_defaults():
    bins = LABEL_DEFENSES.get("rr_on_bins").Params(low=0, high=1)
    assert (bins.bins, bins.prior_share) == (20, 0.1)
    assert LABEL_DEFENSES.get("label_extension").Params().dimension == 4
    assert GRADIENT_DEFENSES.get("sparsify").Params().fraction == 0.9
    noise = GRADIENT_DEFENSES.get("gaussian_noise").from_config("regression", None, None, {})
    assert (noise.scale, noise.ratio) == (None, 1.0)  # ratio 1 unless scale is given
    noise = GRADIENT_DEFENSES.get("laplace_noise").from_config("regression", None, None, {"scale": 2})
    assert (noise.scale, noise.ratio) == (2.0, None)
    dp = GRADIENT_DEFENSES.get("dp_gradient").from_config("binary", 1.0, 1e-5, {})
    assert (dp.clip, dp.top_clip, dp.sigma, dp.label_range, dp.stats_epsilon) == (1.0, 1.0, None, None, 0.0)
    extension = LABEL_DEFENSES.get("label_extension").from_config("regression", None, None, {})
    assert (extension.dimension, extension.variant, extension.mix) == (4, "rle", 0.5)
    assert LABEL_DEFENSES.get("rr_with_prior").from_config("binary", 1.0, None, {}).stage1_fraction == 0.7
    assert GRADIENT_DEFENSES.get("marvell").from_config("binary", None, None, {}).strength == 1.0


@pytest.mark.parametrize(("values", "message"), [
    ({"lr": "fast"}, "attack 'lba': parameter lr must be a finite number > 0; got 'fast'"),
    ({"lr": float("inf")}, "parameter lr must be a finite number > 0; got inf"),
    ({"batch": 2.5}, "parameter batch must be an integer >= 1; got 2.5"),
    ({"batch": True}, "parameter batch must be an integer >= 1; got True"),
    ({"timed": 1}, "parameter timed must be true or false; got 1"),
    ({"init": "zeros"}, "parameter init must be one of auto, random, model_completion, linear; got 'zeros'"),
    ({"epochs": 0}, "parameter epochs must be 'last', 'all' or a number of last epochs >= 1; got 0"),
    ({"lrr": 1}, "unknown parameter 'lrr' for attack 'lba'; valid: batch, depth, distance, epochs, hidden, init,"),
])
def test_bad_values_are_one_line_errors_naming_plugin_parameter_and_value(values, message):
    with pytest.raises(UserError) as info:
        ATTACKS.get("lba")(values)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_cli_strings_toml_values_and_python_values_validate_the_same():
    cli = parse_params(["lr=0.05", "timed=true", "epochs=3", "batch=256", "init-steps=10"], "--param")
    toml_like = {"lr": 0.05, "timed": "true", "epochs": 3.0, "batch": 256, "init_steps": 10}
    python = {"lr": 0.05, "timed": True, "epochs": 3, "batch": 256, "init_steps": 10}
    cls = ATTACKS.get("lba")
    assert cls(cli).params == cls(toml_like).params == cls(python).params
    assert cls(cli).explicit == {"lr", "timed", "epochs", "batch", "init_steps"}


def test_cross_parameter_checks_are_one_line():
    with pytest.raises(UserError, match=r"^defence 'laplace': give both low and high clip bounds, or neither$"):
        LABEL_DEFENSES.get("laplace").from_config("regression", 1.0, None, {"low": 0})
    with pytest.raises(UserError, match=r"^defence 'gaussian_noise': give scale or ratio, not both$"):
        GRADIENT_DEFENSES.get("gaussian_noise").from_config("regression", None, None, {"scale": 1, "ratio": 1})
    with pytest.raises(UserError, match="bounds_share \\+ prior_share must be < 1"):
        LABEL_DEFENSES.get("rr_on_bins").from_config("regression", 1.0, None, {"bounds_share": 0.5,
                                                                                "prior_share": 0.5})


def test_auc_settings_go_through_the_method_schema():
    scores, labels = np.linspace(0, 1, 40), np.arange(40) % 2
    with pytest.raises(UserError, match="unknown parameter 'delta' for AUC method 'hist'; valid: buckets, epsilon"):
        run_auc("hist", scores, labels, 1.0, delta=1e-5, show_progress=False)
    with pytest.raises(UserError, match="AUC method 'dpauc': parameter thresholds must be an integer >= 4; got 3"):
        run_auc("dpauc", scores, labels, 1.0, thresholds=3, show_progress=False)
    assert run_auc("hist_gauss", scores, labels, 1.0, show_progress=False)["delta"] == 1e-6


def test_listing_commands_text_fits_80_columns_and_json_is_one_object(capsys):
    for command, key in (("attacks", "attacks"), ("defenses", "gradient"), ("auc-methods", "methods")):
        assert main([command]) == 0
        out = capsys.readouterr().out
        assert out.strip() and max(len(line) for line in out.splitlines()) <= 80, command
        assert main([command, "--json"]) == 0
        payload = json.loads(capsys.readouterr().out)
        assert payload[key], command
    assert main(["defenses", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    sparsify = next(e for e in payload["gradient"] if e["name"] == "sparsify")
    assert {r["name"]: (r["type"], r["default"]) for r in sparsify["params"]} == {
        "fraction": ("float >= 0 and < 1", 0.9), "error_feedback": ("bool", False)}
    assert payload["top_model_dp"]["params"][0]["required"] is True


def test_example_plugins_run_end_to_end(example_plugin, tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert main(["train", "--dataset", "diabetes", "--epochs", "1", "--parties", "1", "--quiet", "--json",
                 "--label-defense", "round_labels", "--defense-param", "step=25", "--transcript", str(run_dir)]) == 0
    privacy = json.loads(capsys.readouterr().out)["privacy"]
    assert privacy["label_defense"] == "round_labels" and privacy["epsilon"] is None
    assert main(["attack", "--transcript", str(run_dir), "--attack", "quantile", "--param", "q=0.5", "--known", "20",
                 "--json", "--quiet"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["attack"] == "quantile" and out["params"] == {"q": 0.5} and out["metrics"]["mse"] > 0
    assert main(["attack", "--transcript", str(run_dir), "--attack", "quantile", "--param", "q=2", "--quiet"]) == 2
    assert "attack 'quantile': parameter q must be a finite number >= 0 and <= 1; got 2" in capsys.readouterr().err
    assert main(["train", "--dataset", "diabetes", "--epochs", "1", "--quiet", "--label-defense", "round_labels"]) == 2
    assert "parameter step is required" in capsys.readouterr().err

    scores, labels = synthetic_scores("breast_cancer", 0)
    result = run_auc("hist_coarse", scores, labels, 4.0, show_progress=False)
    assert result["buckets"] == 10 and 0.8 < result["estimate"] < 1.1
    assert run_auc("hist_coarse", scores, labels, 4.0, buckets=4, show_progress=False)["buckets"] == 4
    assert "quantile" in ATTACKS and "round_labels" in LABEL_DEFENSES and "hist_coarse" in METHODS


def test_example_plugins_leave_the_registries_as_they_were():
    assert "quantile" not in ATTACKS and "round_labels" not in LABEL_DEFENSES and "hist_coarse" not in METHODS


def test_validate_params_accepts_dashes_for_underscores():
    model = validate_params(ATTACKS.get("lba").Params, {"min-steps": 5}, "attack 'lba'")
    assert model.min_steps == 5


def test_the_registry_supplies_each_plugins_name_and_refuses_another():
    for registry in (ATTACKS, LABEL_DEFENSES, GRADIENT_DEFENSES):
        assert [registry.get(n).name for n in registry] == registry.names()
    registry: Registry[type] = Registry("attack", names=True)

    @registry.register("first")
    class First:
        pass

    class Other:
        name = "other"

    assert First.name == "first"  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="named 'other' but registered as 'wrong'"):
        registry.add("wrong", Other)
