"""`fedsim train` / `fedsim datasets`: the JSON contract and one-line errors with exit code 2."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from fedsim.cli.app import main

TRAIN_KEYS = {"dataset", "task", "n_train", "n_test", "parties", "runtime", "epochs", "test", "privacy", "timing",
              "transcript"}


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def mixed_csv(tmp_path):
    rng = np.random.default_rng(0)
    n = 300
    table = pd.DataFrame({
        "age": rng.integers(18, 90, n), "income": rng.lognormal(10, 1, n),
        "city": rng.choice(["paris", "rome", "oslo"], n), "member": rng.random(n) < 0.3,
    })
    table["y"] = 0.02 * table["age"] + np.log(table["income"]) + (table["city"] == "rome") + rng.normal(0, .1, n)
    path = tmp_path / "mixed.csv"
    table.to_csv(path, index=False)
    return path


def test_train_on_mixed_csv_prints_contract_keys(capsys, tmp_path, mixed_csv):
    out_dir = tmp_path / "out"
    code, out, err = run(capsys, "train", "--data", str(mixed_csv), "--target", "y", "--parties", "2", "--epochs",
                         "20", "--transcript", str(out_dir), "--json")
    assert code == 0, err
    payload = json.loads(out)
    assert set(payload) >= TRAIN_KEYS
    assert set(payload["test"]) == {"mse", "rmse", "mae", "r2"}
    assert payload["test"]["r2"] > 0.5
    assert set(payload["privacy"]) >= {"label_defense", "gradient_defense", "epsilon", "delta", "guarantee"}
    assert payload["privacy"]["epsilon"] is None
    assert set(payload["timing"]) == {"train_s", "steps", "per_step_ms"}
    assert (out_dir / "manifest.json").is_file() and (out_dir / "truth" / "labels.npz").is_file()


@pytest.fixture
def holes_csv(tmp_path, mixed_csv):
    table = pd.read_csv(mixed_csv)
    table.loc[[0, 5], "income"] = [np.nan, np.inf]
    table.loc[9, "city"] = None
    path = tmp_path / "holes.csv"
    table.to_csv(path, index=False)
    return path


def test_missing_values_without_impute_are_one_line_exit_2(capsys, tmp_path, holes_csv):
    out_dir = tmp_path / "run"
    code, out, err = run(capsys, "train", "--data", str(holes_csv), "--target", "y", "--epochs", "1",
                         "--transcript", str(out_dir), "--quiet")
    assert code == 2 and out == ""
    assert err.startswith("fedsim: error: 3 missing or infinite feature values in 2 columns: income (2), city (1);")
    assert len(err.strip().splitlines()) == 1 and not out_dir.exists()


@pytest.mark.parametrize("impute", ["mean", "drop"])
def test_missing_values_are_one_warning_line_and_in_the_result(capsys, holes_csv, impute):
    path = holes_csv
    code, out, err = run(capsys, "train", "--data", str(path), "--target", "y", "--epochs", "1", "--impute", impute,
                         "--json", "--quiet")
    assert code == 0, err
    assert err.startswith("fedsim: warning: 3 missing or infinite feature values in 2 columns: income (2), city (1);")
    assert len(err.strip().splitlines()) == 1
    payload = json.loads(out)
    assert payload["missing_values"] == {"impute": impute, "columns": {"income": 2, "city": 1},
                                         "rows_dropped": 3 if impute == "drop" else 0}
    assert payload["n_train"] + payload["n_test"] == (297 if impute == "drop" else 300)


def test_datasets_lists_builtin(capsys):
    code, out, _ = run(capsys, "datasets", "--json")
    assert code == 0
    names = {d["name"] for d in json.loads(out)["datasets"]}
    assert {"diabetes", "breast_cancer", "synthetic_regression", "synthetic_ctr"} <= names


def _table(tmp_path, name: str, **columns) -> str:
    path = tmp_path / name
    pd.DataFrame(columns).to_csv(path, index=False)
    return str(path)


def bad_inputs(tmp_path):
    n = 20
    x = np.arange(n, dtype=float)
    return {
        "unknown dataset": (["--dataset", "nope"], "unknown dataset 'nope'; valid:"),
        "missing file": (["--data", str(tmp_path / "none.csv"), "--target", "y"], "does not exist"),
        "target absent": (["--data", _table(tmp_path, "a.csv", x=x, y=x), "--target", "z"], "target column 'z'"),
        "non-numeric regression target": (
            ["--data", _table(tmp_path, "b.csv", x=x, y=[f"v{i % 3}" for i in range(n)]), "--target", "y",
             "--task", "regression"], "not numeric"),
        "binary with three values": (
            ["--data", _table(tmp_path, "c.csv", x=x, y=[i % 3 for i in range(n)]), "--target", "y", "--task",
             "binary"], "exactly two distinct values"),
        "nan label": (["--data", _table(tmp_path, "d.csv", x=x, y=[np.nan] + list(x[1:])), "--target", "y"],
                      "missing (NaN) labels"),
        "infinite label": (["--data", _table(tmp_path, "e.csv", x=x, y=[np.inf] + list(x[1:])), "--target", "y"],
                           "infinite labels"),
        "empty dataset": (["--data", _table(tmp_path, "f.csv", x=[], y=[]), "--target", "y"], "no rows"),
        "too many parties": (["--dataset", "diabetes", "--parties", "11"], "11 feature parties but only 10"),
        "batch size": (["--batch-size", "0"], "batch-size"),
        "epochs": (["--epochs", "0"], "epochs"),
        "negative lr": (["--lr", "-0.1"], "learning rate must be a finite number > 0"),
        "bad runtime": (["--runtime", "grpc"], "runtime"),
    }


@pytest.mark.parametrize("case", [
    "unknown dataset", "missing file", "target absent", "non-numeric regression target", "binary with three values",
    "nan label", "infinite label", "empty dataset", "too many parties", "batch size", "epochs", "negative lr",
    "bad runtime"])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(capsys, tmp_path, case):
    args, message = bad_inputs(tmp_path)[case]
    out_dir = tmp_path / "transcript"
    code, out, err = run(capsys, "train", *args, "--transcript", str(out_dir), "--quiet")
    assert code == 2
    assert out == ""
    assert len(err.strip().splitlines()) == 1, err
    assert message in err
    assert not out_dir.exists() and not list(tmp_path.glob(".transcript*"))


def test_existing_transcript_dir_needs_overwrite(capsys, tmp_path):
    out_dir = tmp_path / "t"
    out_dir.mkdir()
    (out_dir / "keep.txt").write_text("user data")
    code, _, err = run(capsys, "train", "--epochs", "1", "--transcript", str(out_dir), "--quiet")
    assert code == 2 and "already exists; pass --overwrite" in err
    assert (out_dir / "keep.txt").read_text() == "user data"
    code, _, err = run(capsys, "train", "--epochs", "1", "--transcript", str(out_dir), "--overwrite", "--quiet")
    assert code == 0, err
    assert (out_dir / "manifest.json").is_file() and not (out_dir / "keep.txt").exists()
