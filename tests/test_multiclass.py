"""Multi-class classification: target encoding, datasets, the label party's loss, metrics, the manifest."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from fedsim_fixtures import old_manifest

from fedsim.config import TrainConfig
from fedsim.data import encode_target, load_table, vertical_from_table
from fedsim.errors import UserError
from fedsim.metrics import attack_metrics, task_metrics, top_k
from fedsim.parties import target_tensor
from fedsim.rundir import FORMAT_VERSION, TranscriptManifest, load_party_view
from fedsim.training import train


def test_string_classes_are_inferred_and_sorted():
    y, task, classes = encode_target(pd.Series(["b", "c", "a", "b"], name="y"), None)
    assert task == "multiclass" and classes == ["a", "b", "c"]
    np.testing.assert_array_equal(y, [1, 2, 0, 1])
    assert y.dtype == np.float64


def test_integer_column_is_regression_unless_multiclass_is_asked_for():
    target = pd.Series([3, 10, 7, 3, 10], name="y")
    assert encode_target(target, None)[1] == "regression"
    y, task, classes = encode_target(target, "multiclass")
    assert task == "multiclass" and classes == ["3", "7", "10"]  # numerical order, not string order
    np.testing.assert_array_equal(y, [0, 2, 1, 0, 2])


def test_binary_keeps_its_encoding_and_names_its_classes():
    y, task, classes = encode_target(pd.Series(["no", "yes", "no"], name="y"), None)
    assert task == "binary" and classes == ["no", "yes"]
    np.testing.assert_array_equal(y, [0, 1, 0])


@pytest.mark.parametrize(("values", "task", "message"), [
    (["a", "a", "a"], "multiclass", "at least two classes; 'y' has 1"),
    (["a", "b", "c"], "binary", "exactly two distinct values; 'y' has 3; use --task multiclass"),
    ([0.5, 1.0, 2.0], "multiclass", "fractional values"),
])
def test_bad_class_columns_are_one_line_errors(values, task, message):
    with pytest.raises(UserError, match=message):
        encode_target(pd.Series(values, name="y"), task)


def test_a_class_only_in_the_test_split_is_refused():
    n = 40
    features = pd.DataFrame({"a": np.arange(n, dtype=float), "b": np.ones(n)})
    labels = pd.Series(["x", "y"] * (n // 2), name="y")
    labels.iloc[0] = "lonely"  # one row: stratification is off, and it lands in one split
    for seed in range(20):
        try:
            ds = vertical_from_table("t", features, labels, None, 2, seed=seed)
        except UserError as exc:
            assert "class 'lonely' occurs only in the test split" in str(exc)
            return
        assert "lonely" in ds.classes and 0 in ds.y_train
    pytest.fail("no seed put the single row into the test split")


def test_digits_columns_run_left_to_right():
    features, target, task = load_table("digits", np.random.default_rng(0))
    assert task == "multiclass" and features.shape == (1797, 64) and target.nunique() == 10
    ds = vertical_from_table("digits", features, target, None, 2, seed=0)
    assert ds.blocks[0].source_columns[0] == "c0_r0" and ds.blocks[0].source_columns[-1] == "c3_r7"
    assert ds.blocks[1].source_columns[0] == "c4_r0"  # right half of the image
    assert ds.n_classes == 10 and ds.classes[0] == "0"


def test_synthetic_multiclass_is_seeded_and_balanced_enough():
    a, ya, task = load_table("synthetic_multiclass", np.random.default_rng(3), n_rows=20_000)
    b, yb, _ = load_table("synthetic_multiclass", np.random.default_rng(3), n_rows=20_000)
    pd.testing.assert_frame_equal(a, b)
    assert task == "multiclass" and a.dtypes.unique().tolist() == [np.float32]
    shares = ya.value_counts(normalize=True)
    assert len(shares) == 5 and shares.min() > 0.05


def test_target_tensor_takes_indices_or_soft_rows():
    assert target_tensor(np.array([0.0, 2.0, 1.0]), "multiclass").dtype == torch.int64
    soft = target_tensor(np.full((3, 4), 0.25), "multiclass")
    assert soft.dtype == torch.float32 and soft.shape == (3, 4)
    loss = torch.nn.CrossEntropyLoss()
    logits = torch.zeros(3, 4)
    assert abs(float(loss(logits, soft)) - np.log(4)) < 1e-6  # uniform soft labels on uniform logits


def test_metrics_match_scikit_learn():
    from sklearn.metrics import f1_score, top_k_accuracy_score

    rng = np.random.default_rng(0)
    y = rng.integers(0, 5, 300)
    proba = rng.dirichlet(np.ones(5), 300)
    out = task_metrics("multiclass", y.astype(float), proba)
    assert out["accuracy"] == pytest.approx(np.mean(proba.argmax(1) == y))
    assert out["macro_f1"] == pytest.approx(f1_score(y, proba.argmax(1), average="macro"))
    assert top_k(5) == 3 and top_k(3) == 2 and top_k(2) == 1
    assert out["top_k_accuracy"] == pytest.approx(top_k_accuracy_score(y, proba, k=3))
    by_index = attack_metrics("multiclass", y, proba.argmax(1).astype(float))
    by_score = attack_metrics("multiclass", y, proba)
    assert by_index == by_score and set(by_index) == {"accuracy", "macro_f1", "matched_accuracy", "matched_macro_f1"}


@pytest.fixture(scope="module")
def iris_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("iris") / "run"
    config = TrainConfig(dataset="iris", epochs=30, seed=0)
    return train(config, transcript_dir=folder), folder


def test_iris_trains_to_a_useful_classifier(iris_run):
    result, _ = iris_run
    assert result.dataset.task == "multiclass" and result.label_party.model.net[-1].out_features == 3
    assert result.metrics["accuracy"] > 0.7  # 1/3 by chance
    assert result.to_json()["task"] == "multiclass"


def test_manifest_and_view_carry_the_classes(iris_run):
    _, folder = iris_run
    view = load_party_view(folder, 0)
    assert view.loss == "cross_entropy" and view.n_classes == 3 and view.task == "multiclass"
    assert view.manifest.classes == ["setosa", "versicolor", "virginica"]


def test_a_format_1_manifest_reads_as_before(tmp_path):
    config = TrainConfig(dataset="breast_cancer", epochs=1)
    folder = tmp_path / "run"
    train(config, transcript_dir=folder)
    raw = json.loads((folder / "manifest.json").read_text())
    assert raw["format"] == FORMAT_VERSION == 4 and raw["n_classes"] == 2
    (folder / "manifest.json").write_text(json.dumps(old_manifest(raw, config, 1)))
    manifest = TranscriptManifest.read(folder)
    assert manifest.n_classes == 2 and manifest.classes == ["0", "1"]


def test_flower_parity_multiclass():
    from fedsim_fixtures import small_config
    from test_flower import assert_same_run, run_direct

    config = small_config(dataset="synthetic_multiclass", rows=300, parties=2, epochs=2)
    local, flower = train(config), run_direct(config)
    assert local.dataset.task == "multiclass" and set(local.metrics) >= {"accuracy", "macro_f1"}
    assert_same_run(local, flower)


@pytest.mark.parametrize(("labels", "task", "message"), [
    (["a", "b", "c"] * 10, "binary", "exactly two distinct values; 'y' has 3; use --task multiclass"),
    (["a"] * 30, "multiclass", "at least two classes; 'y' has 1"),
])
def test_cli_bad_class_columns_exit_2_and_write_nothing(tmp_path, capsys, labels, task, message):
    from fedsim.cli.app import main

    path = tmp_path / "t.csv"
    pd.DataFrame({"x1": np.arange(30.0), "x2": np.ones(30), "y": labels}).to_csv(path, index=False)
    out = tmp_path / "run"
    code = main(["train", "--data", str(path), "--target", "y", "--task", task, "--transcript", str(out), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and err.count("\n") == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.csv"]  # no transcript, no staging folder
