"""What a new user meets first: --version, one-line errors, id columns, attacking a deployment's transcript,
help pages at 80 columns."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from importlib import metadata

import numpy as np
import pandas as pd
import pytest

from fedsim.cli.app import load_command, main
from fedsim.data import read_table
from fedsim.errors import UserError


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code: int, out: str, err: str, *fragments: str) -> None:
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("fedsim: error: ")
    for fragment in fragments:
        assert fragment in err


def test_version_comes_from_package_metadata(capsys):
    code, out, _ = run(capsys, "--version")
    assert code == 0
    assert out.strip() == f"fedsim {metadata.version('fedsim')}"


@pytest.mark.parametrize(("args", "fragments"), [
    (["--epsilon", "1"], ["--epsilon needs a defence", "--label-defense", "laplace", "dp_gradient"]),
    (["--delta", "1e-5"], ["--delta needs a defence", "top_dp_epsilon"]),
])
def test_privacy_budget_without_a_defence_is_refused(capsys, tmp_path, args, fragments):
    out_dir = tmp_path / "t"
    code, out, err = run(capsys, "train", "--epochs", "1", "--transcript", str(out_dir), "--quiet", *args)
    assert_one_line_error(code, out, err, *fragments)
    assert not out_dir.exists()


def test_delta_with_top_model_dp_passes_validation():
    from fedsim.config import TrainConfig, validated

    config = validated(TrainConfig, delta=1e-5, defense_params={"top_dp_epsilon": 2})
    assert config.delta == 1e-5


def test_missing_target_is_one_line_without_the_config(capsys, tmp_path):
    code, out, err = run(capsys, "train", "--data", str(tmp_path / "f.csv"))
    assert_one_line_error(code, out, err, "--data needs --target COLUMN")
    assert "{" not in err and "epochs" not in err  # no dump of the internal config


def _write(tmp_path, name: str, **columns) -> str:
    path = tmp_path / name
    pd.DataFrame(columns).to_csv(path, index=False)
    return str(path)


@pytest.fixture
def xy():
    rng = np.random.default_rng(0)
    x = rng.normal(size=30)
    return x, 2 * x + rng.normal(0, 0.1, 30)


def test_a_column_named_id_is_the_id_column(tmp_path, xy):
    x, y = xy
    ids = np.random.default_rng(1).permutation(1000)[:30] + 5000
    features, target = read_table(_write(tmp_path, "t.csv", id=ids, x=x, y=y), "y")
    assert list(features.columns) == ["x"]
    assert np.array_equal(features.index.to_numpy(), ids) and np.array_equal(target.index.to_numpy(), ids)


@pytest.mark.parametrize("start", [0, 1])
def test_a_row_id_lookalike_is_refused_naming_id_column(capsys, tmp_path, xy, start):
    x, y = xy
    idx = np.random.default_rng(2).permutation(30) + start
    path = _write(tmp_path, "t.csv", idx=idx, x=x, y=y)
    code, out, err = run(capsys, "train", "--data", path, "--target", "y", "--quiet")
    assert_one_line_error(code, out, err, "'idx'", "looks like a row id", "--id-column idx", "--id-column none")


def test_a_saved_pandas_index_is_refused(tmp_path, xy):
    x, y = xy
    path = tmp_path / "t.csv"
    pd.DataFrame({"x": x, "y": y}).to_csv(path)  # index=True: an "Unnamed: 0" column 0..n-1
    with pytest.raises(UserError, match="Unnamed: 0"):
        read_table(path, "y")


def test_id_column_flag_uses_or_keeps_the_column(tmp_path, xy):
    x, y = xy
    idx = np.arange(30)[::-1]
    path = _write(tmp_path, "t.csv", idx=idx, x=x, y=y)
    features, _ = read_table(path, "y", "idx")
    assert list(features.columns) == ["x"] and np.array_equal(features.index.to_numpy(), idx)
    features, _ = read_table(path, "y", "none")
    assert list(features.columns) == ["idx", "x"] and np.array_equal(features.index.to_numpy(), np.arange(30))


def test_small_integer_features_are_not_row_ids(tmp_path, xy):
    x, y = xy
    features, _ = read_table(_write(tmp_path, "t.csv", count=np.arange(30) % 4, x=x, y=y), "y")
    assert list(features.columns) == ["count", "x"]


@pytest.fixture(scope="module")
def deployment(tmp_path_factory):
    """A transcript as a deployment would leave it: no truth/ folder; plus the truth kept aside."""
    base = tmp_path_factory.mktemp("attack")
    assert main(["train", "--dataset", "diabetes", "--parties", "1", "--epochs", "1", "--transcript",
                 str(base / "run"), "--quiet"]) == 0
    with np.load(base / "run" / "truth" / "labels.npz") as truth:
        ids, labels = truth["train_ids"], truth["y_train"]
    shutil.copytree(base / "run", base / "deployed")
    shutil.rmtree(base / "deployed" / "truth")
    pd.DataFrame({"id": ids[:15], "label": labels[:15]}).to_csv(base / "known.csv", index=False)
    return base, ids, labels


def test_attack_without_truth_needs_known_labels(capsys, deployment):
    base, _, _ = deployment
    code, out, err = run(capsys, "attack", "--transcript", str(base / "deployed"), "--attack", "mean", "--quiet")
    assert_one_line_error(code, out, err, "no truth/ folder", "--known-labels FILE.csv")


def test_attack_without_truth_writes_estimates_and_no_metrics(capsys, deployment):
    base, ids, labels = deployment
    estimates = base / "estimates.csv"
    code, out, err = run(capsys, "attack", "--transcript", str(base / "deployed"), "--attack", "mean",
                         "--known-labels", str(base / "known.csv"), "--estimates", str(estimates), "--json",
                         "--quiet")
    assert code == 0, err
    payload = json.loads(out)
    assert "metrics" not in payload
    assert payload["known_labels"] == 15 and payload["estimates"] == str(estimates)
    table = pd.read_csv(estimates)
    assert list(table.columns[:2]) == ["id", "estimate"]
    assert len(table) == payload["n_attacked"] == len(ids) - 15
    assert set(table["id"]).isdisjoint(ids[:15]) and set(table["id"]) <= set(ids)
    assert np.allclose(table["estimate"], labels[:15].mean())  # the mean attack predicts the known labels' mean
    assert not list(base.glob(".estimates.csv*"))


def test_attack_with_truth_and_known_labels_scores_the_estimates(capsys, deployment):
    base, _, labels = deployment
    code, out, err = run(capsys, "attack", "--transcript", str(base / "run"), "--attack", "mean",
                         "--known-labels", str(base / "known.csv"), "--json", "--quiet")
    assert code == 0, err
    payload = json.loads(out)
    assert payload["known_labels"] == 15 and payload["estimates"] is None
    assert payload["metrics"]["mse"] > 0


@pytest.mark.parametrize(("content", "fragment"), [
    ("ident,label\n1,2\n", "needs columns id,label"),
    ("id,label\n999999,2\n", "not training samples"),
    ("id,label\n0,x\n", "finite number"),
])
def test_bad_known_labels_file_is_one_line(capsys, deployment, content, fragment):
    base, _, _ = deployment
    path = base / f"bad{abs(hash(content))}.csv"
    path.write_text(content)
    code, out, err = run(capsys, "attack", "--transcript", str(base / "deployed"), "--attack", "mean",
                         "--known-labels", str(path), "--estimates", str(base / "never.csv"), "--quiet")
    assert_one_line_error(code, out, err, fragment)
    assert not (base / "never.csv").exists()


COMMANDS = ["datasets", "train", "attack", "bench", "report", "demo", "auc"]


@pytest.mark.parametrize("command", COMMANDS)
def test_help_fits_80_columns_and_describes_every_flag(capsys, monkeypatch, command):
    monkeypatch.setenv("COLUMNS", "80")
    code, out, _ = run(capsys, command, "--help")
    assert code == 0
    assert max(len(line) for line in out.splitlines()) <= 80, out
    assert "\\[" not in out and "--no-" not in out
    click_command = load_command(command)
    for param in click_command.params:
        assert param.help, f"fedsim {command}: {param.name} has no help text"


def test_help_lists_the_registries_names(capsys):
    """Help wraps at spaces only, so every name appears whole."""
    from fedsim.data import DATASETS
    from fedsim.evaluation.methods import METHODS
    from fedsim.registry import ATTACKS, GRADIENT_DEFENSES, LABEL_DEFENSES

    pages = {c: run(capsys, c, "--help")[1] for c in ("train", "attack", "auc")}
    for name in DATASETS.names() + LABEL_DEFENSES.names() + GRADIENT_DEFENSES.names():
        assert name in pages["train"]
    for name in ATTACKS.names():
        assert name in pages["attack"]
    for name in METHODS.names():
        assert name in pages["auc"]


@pytest.mark.parametrize("command", ["train", "attack", "auc", "bench"])
def test_help_pages_load_no_plugin_package(command):
    """A help page lists the registries' names without importing torch or a plugin package (`fedsim --help`
    and every `COMMAND --help` must answer in well under a second); the names are the registries' own."""
    probe = ("import sys; from fedsim.cli.app import main; main([" + repr(command) + ", '--help']); "
             "print(sorted(m for m in ('torch', 'sklearn', 'fedsim.attacks', 'fedsim.defenses') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_the_command_list_loads_no_command():
    """`fedsim --help` lists every command from the generated index: it imports no command module, nor pydantic,
    rich or numpy (the bulk of a help page's time), and a command's help loads only that command."""
    heavy = ("pydantic", "rich", "numpy", *(f"fedsim.cli.{m}" for m in ("train", "attack", "bench", "auc", "audit",
                                                                         "plugins", "deploy")))
    probe = ("import sys; from fedsim.cli.app import main; main(sys.argv[1:]); "
             f"print(sorted(m for m in {heavy!r} if m in sys.modules))")
    listed = subprocess.run([sys.executable, "-c", probe, "--help"], capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.strip().splitlines()[-1] == "[]"
    assert all(f"  {name} " in listed.stdout for name in ("datasets", "attack", "auc-methods", "deploy"))
    one = subprocess.run([sys.executable, "-c", probe, "deploy", "--help"], capture_output=True, text=True,
                         timeout=120)
    assert one.returncode == 0, one.stderr
    assert one.stdout.strip().splitlines()[-1] == "['fedsim.cli.deploy']"


def test_the_help_pages_builtin_names_are_the_registries():
    from fedsim.cli.help import BUILTIN_NAMES, registry_names

    assert json.loads(BUILTIN_NAMES.read_text()) == registry_names()


@pytest.mark.parametrize("option", ["--projection", "--plot"])
def test_curve_options_without_curves_are_refused(capsys, tmp_path, option):
    """`isotonic` is the default projection, so naming `box` without --curves is a choice that would be
    silently ignored; so would a plot."""
    plot = tmp_path / "curves.png"
    value = "box" if option == "--projection" else str(plot)
    code, out, err = run(capsys, "auc", "--synthetic", "breast_cancer", "--method", "hist", "--epsilon", "1",
                         option, value)
    assert_one_line_error(code, out, err, "--plot and --projection need --curves")
    assert not plot.exists()
