"""Grid files: validation errors are one line naming the key and the allowed values; expansion and hashes."""

from __future__ import annotations

import pandas as pd
import pytest

from fedsim.cli.app import main
from fedsim.errors import UserError
from fedsim.experiments.cells import run_auc_cell
from fedsim.experiments.expansion import config_hash, expand
from fedsim.experiments.grid import load_grid, shipped_grids
from fedsim.experiments.report_auc import _auc_variant
from fedsim.experiments.results import result_rows
from fedsim.experiments.schema import parse_grid

BASE = """
name = "t"
[leakage]
datasets = ["diabetes"]
seeds = [0, 1]
attacks = ["mean", {name = "model_completion", known_fractions = [0.02, 0.05]}]
[leakage.training]
epochs = 2
[[leakage.defenses]]
[[leakage.defenses]]
label = "laplace"
epsilons = [1.0, 4.0]
params = {bounds_share = 0.1}
"""


def write(tmp_path, text: str):
    path = tmp_path / "grid.toml"
    path.write_text(text)
    return path


def error_of(tmp_path, text: str) -> str:
    with pytest.raises(UserError) as info:
        load_grid(write(tmp_path, text))
    message = str(info.value)
    assert "\n" not in message
    return message


def test_shipped_grids_load_and_expand():
    assert {"quick", "regression_leakage", "dp_auc"} <= set(shipped_grids())
    for name in shipped_grids():
        spec, _ = load_grid(name)
        cells = expand(spec)
        assert cells and len({c.key for c in cells}) == len(cells)


def test_expansion_counts_and_attack_runs(tmp_path):
    spec, _ = load_grid(write(tmp_path, BASE))
    cells = expand(spec)
    assert len(cells) == (1 + 2) * 2  # (none + laplace at 2 epsilons) x 2 seeds
    runs = cells[0].config["attacks"]
    assert [(a["name"], a["known_fraction"]) for a in runs] == [
        ("mean", 0.01), ("model_completion", 0.02), ("model_completion", 0.05)]
    laplace = [c for c in cells if c.labels["defense"] == "laplace"]
    assert sorted({c.labels["strength"] for c in laplace}) == [1.0, 4.0]
    assert all(c.config["train"]["epsilon"] == c.labels["strength"] for c in laplace)


def test_hash_is_stable_and_follows_the_config(tmp_path):
    first = [c.key for c in expand(load_grid(write(tmp_path, BASE))[0])]
    again = [c.key for c in expand(load_grid(write(tmp_path, BASE))[0])]
    assert first == again
    changed = [c.key for c in expand(load_grid(write(tmp_path, BASE.replace("epochs = 2", "epochs = 3")))[0])]
    assert not set(first) & set(changed)
    assert config_hash({"a": 1, "b": [1, 2]}) == config_hash({"b": [1, 2], "a": 1})


def test_duplicate_cells_are_merged(tmp_path):
    spec, _ = load_grid(write(tmp_path, BASE + "[[leakage.defenses]]\n"))  # a second "no defence"
    assert len(expand(spec)) == 6


def test_sweep_of_a_heuristic_defence(tmp_path):
    text = BASE.replace('label = "laplace"\nepsilons = [1.0, 4.0]\nparams = {bounds_share = 0.1}',
                        'gradient = "gaussian_noise"\nsweep = {param = "scale", values = [0.1, 1.0]}')
    cells = [c for c in expand(load_grid(write(tmp_path, text))[0]) if c.labels["defense"] != "none"]
    assert {c.labels["strength_param"] for c in cells} == {"scale"}
    assert sorted({c.config["train"]["defense_params"]["scale"] for c in cells}) == [0.1, 1.0]


@pytest.mark.parametrize(("text", "expected"), [
    ("name = 't'\n[leakage\n", ["malformed TOML"]),
    ("colour = 'red'\n" + BASE, ["unknown key 'colour'", "allowed:", "name, description, leakage, auc"]),
    (BASE.replace("seeds = [0, 1]", "seeds = [0, 1]\nseed = 1"), ["leakage: unknown key 'seed'", "seeds"]),
    (BASE.replace('"diabetes"', '"diabetis"'), ["leakage.datasets.0", "unknown dataset 'diabetis'", "diabetes"]),
    (BASE.replace('"mean"', '"lbx"'), ["leakage.attacks.0.name", "unknown attack 'lbx'", "lba"]),
    (BASE.replace('"mean"', '"norm_scoring"'), ["does not apply to regression", "lba"]),
    (BASE.replace("seeds = [0, 1]", "seeds = []"), ["leakage.seeds", "empty"]),
    (BASE.replace("epochs = 2", "epochz = 2"), ["unknown key 'epochz'", "epochs"]),
    (BASE.replace("epochs = 2", "epochs = 0"), ["leakage.training", "epochs"]),
    (BASE.replace("epochs = 2", "seed = 3"), ["'seed' is set by the grid's axes"]),
    (BASE.replace('label = "laplace"', 'label = "laplacian"'), ["leakage.defenses.1.label", "laplace"]),
    (BASE.replace('label = "laplace"', 'label = "rr"'), ["does not apply to regression"]),
    (BASE.replace("[1.0, 4.0]", "[1.0, -4.0]"), ["epsilon must be > 0"]),
    (BASE.replace("params = {bounds_share = 0.1}", ""), ["leakage.defenses.1", "clip bounds"]),
    (BASE.replace("known_fractions = [0.02, 0.05]", "params = {stepz = 3}"), ["leakage.attacks.1.params", "stepz"]),
    (BASE.replace("[0.02, 0.05]", "[0.02, 1.5]"), ["known fractions must be in (0, 1)"]),
    ("name = 't'\n", ["[leakage]", "[auc]"]),
    ("name = 't'\n[auc]\nsources = ['diabetes']\nmethods = ['hist']\nepsilons = [1.0]\n",
     ["auc.sources.0", "regression dataset", "binary"]),
    ("name = 't'\n[auc]\nsources = ['breast_cancer']\nmethods = ['histo']\nepsilons = [1.0]\n",
     ["auc.methods.0", "unknown AUC method 'histo'", "hist"]),
    ("name = 't'\n[auc]\nsources = [{synthetic = 'kriteo'}]\nmethods = ['hist']\nepsilons = [1.0]\n",
     ["auc.sources.0.synthetic", "criteo"]),
    ("name = 't'\n[auc]\nsources = ['breast_cancer']\nmethods = [{name = 'rr', secure_aggregation = true}]\n"
     "epsilons = [1.0]\nclients = [4]\n", ["auc.methods.0", "integer histogram"]),
    ("name = 't'\n[auc]\nsources = ['breast_cancer']\nmethods = [{name = 'hist', secure_aggregation = true}]\n"
     "epsilons = [1.0]\n", ["auc.methods.0", "with 1 client", "nothing to aggregate"]),
    ("name = 't'\n[auc]\nsources = ['breast_cancer']\nmethods = [{name = 'hist', secure_aggregation = true, "
     "min_clients = 5}]\nepsilons = [1.0]\nclients = [4]\n", ["auc.methods.0", "min-clients"]),
    ("name = 't'\n[auc]\nsources = ['breast_cancer']\nmethods = [{name = 'hist', min_clients = 2}]\n"
     "epsilons = [1.0]\nclients = [4]\n", ["auc.methods.0.min_clients", "secure_aggregation"]),
])
def test_bad_grids_fail_in_one_line(tmp_path, text, expected):
    message = error_of(tmp_path, text)
    for fragment in expected:
        assert fragment in message, message


def test_auc_study_with_and_without_secure_aggregation(tmp_path):
    text = ("name = 't'\n[auc]\nsources = ['breast_cancer']\nepsilons = [1.0]\nclients = [4, 8]\n"
            "methods = ['hist', {name = 'hist', secure_aggregation = true, min_clients = 3}, 'scalar_laplace']\n")
    with pytest.raises(UserError, match="one label holder"):
        expand(load_grid(write(tmp_path, text))[0])
    text = text.replace(", 'scalar_laplace'", "").replace("['breast_cancer']", "[{synthetic = 'breast_cancer'}]")
    cells = expand(load_grid(write(tmp_path, text))[0])
    secure = [c.config for c in cells if c.config.get("secure_aggregation")]
    assert len(cells) == 4 and len(secure) == 2 and {c["min_clients"] for c in secure} == {3}
    outcome = run_auc_cell(secure[0])["auc"]
    assert outcome["secure_aggregation"] is True and outcome["min_clients"] == 3 and 0 <= outcome["estimate"] <= 1


def test_auc_variants_are_reported_apart(tmp_path):
    """Secure aggregation and variance buckets are releases of their own: each keeps its own report row
    (before, a plain and a secure `hist` at the same clients were averaged into one), and a default cell keeps
    its hash (no `bucketing` key unless it is set)."""
    text = ("name = 't'\n[auc]\nsources = [{synthetic = 'breast_cancer'}]\nepsilons = [1.0]\nclients = [4]\n"
            "repeats = 2\nmethods = ['hist', {name = 'hist', secure_aggregation = true}, "
            "{name = 'hist', bucketing = 'variance'}]\n")
    cells = expand(load_grid(write(tmp_path, text))[0])
    assert [c.config.get("bucketing") for c in cells] == [None, None, "variance"]
    labels = []
    for cell in cells:
        record = {"kind": "auc", "key": "k", "status": "done", "labels": cell.labels, "config": cell.config,
                  **run_auc_cell(cell.config)}
        labels.append(_auc_variant(pd.Series(result_rows(record)[0])))
        assert record["auc"].get("bucketing", "mass") == cell.config.get("bucketing", "mass")
    assert labels == ["hist", "hist (secure aggregation)", "hist (variance buckets)"]
    bad = text.replace("{name = 'hist', bucketing = 'variance'}", "{name = 'dpauc', bucketing = 'variance'}")
    assert "dpauc has none to place" in error_of(tmp_path, bad)


def test_bench_cli_rejects_a_bad_grid_before_any_work(tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["bench", str(write(tmp_path, BASE.replace('"mean"', '"lbx"'))), "--out", str(out), "--workers", "1"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "unknown attack 'lbx'" in err
    assert not out.exists()


def test_unknown_grid_name_lists_the_shipped_ones(tmp_path, capsys):
    code = main(["bench", "quik", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and "quick" in err and "regression_leakage" in err


def test_parse_grid_names_the_location():
    with pytest.raises(UserError, match=r"leakage\.runtimes\.0: Input should be 'local' or 'flower'"):
        parse_grid({"name": "t", "leakage": {"datasets": ["diabetes"], "defenses": [{}], "attacks": ["mean"],
                                             "runtimes": ["remote"]}})


def test_several_leakage_tables_each_with_its_own_settings(tmp_path):
    two = ('name = "t"\n'
           '[[leakage]]\ndatasets = ["diabetes"]\nattacks = ["mean"]\ndefenses = [{}]\n'
           '[[leakage]]\ndatasets = ["diabetes"]\nattacks = ["mean"]\ndefenses = [{}]\ntraining = {epochs = 3}\n')
    assert len(expand(load_grid(write(tmp_path, two))[0])) == 2
    message = error_of(tmp_path, two.replace("epochs = 3", "epochz = 3"))
    assert "leakage.1" in message and "epochz" in message
