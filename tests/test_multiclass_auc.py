"""One-vs-rest macro AUC under label DP (fedsim.evaluation.multiclass) and `fedsim auc --class-scores`."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from fedsim.cli.app import main
from fedsim.errors import UserError
from fedsim.evaluation.methods import METHODS, Settings
from fedsim.evaluation.multiclass import class_publics, multiclass_methods, run_multiclass_auc

NAMES = ["cat", "dog", "eel", "fox"]


def scored(n: int = 2000, k: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    logits = rng.normal(size=(n, k))
    logits[np.arange(n), y] += 1.0
    p = np.exp(logits)
    return p / p.sum(1, keepdims=True), y


@pytest.mark.parametrize("method", ["exact", "hist", "hist_gauss"])
@pytest.mark.parametrize("clients", [1, 3])
def test_noise_free_macro_auc_is_scikit_learns(method, clients):
    p, y = scored()
    out = run_multiclass_auc(method, p, y, NAMES, float("inf"), clients=clients, show_progress=False)
    assert out["estimate"] == pytest.approx(roc_auc_score(y, p, multi_class="ovr", average="macro"), abs=1e-12)
    for k, name in enumerate(NAMES):
        assert out["per_class"][name] == pytest.approx(roc_auc_score(y == k, p[:, k]), abs=1e-12)


def test_one_label_change_moves_two_counts_by_one():
    """The sensitivity the guarantee rests on: a -> b changes class a's and class b's histograms, one count each."""
    p, y = scored(500)
    method = METHODS.get("hist")
    publics = class_publics(method, Settings(1.0), p, None)
    neighbour = y.copy()
    neighbour[7] = (y[7] + 1) % 4

    def counts(labels):
        return [method.prepare(p[:, k], (labels == k).astype(np.int8), publics[k]).positives for k in range(4)]

    diffs = [np.abs(a - b).sum() for a, b in zip(counts(y), counts(neighbour), strict=True)]
    assert sorted(diffs) == [0, 0, 1, 1]
    assert publics[0].noise == pytest.approx(2.0)  # Laplace(2/eps): L1 sensitivity 2 at eps = 1
    gauss = class_publics(METHODS.get("hist_gauss"), Settings(1.0, 1e-6), p, None)[0].noise
    assert gauss == pytest.approx(np.sqrt(2) * METHODS.get("hist_gauss").noise_parameter(Settings(1.0, 1e-6)))


def test_private_estimate_is_unbiased_with_calibrated_intervals():
    p, y = scored(3000)
    out = run_multiclass_auc("hist", p, y, NAMES, 1.0, repeats=200, seed=1, show_progress=False)
    assert abs(out["bias"]) < 3 * out["std"] / np.sqrt(200) + 2e-3
    assert out["ci_coverage"] >= 0.95  # each class's interval carries the (conservative) bucketing bound
    assert out["epsilon"] == 1.0 and "over all 4 classes" in out["guarantee"]


def nearly_separable(n: int = 2000, k: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    p, y = scored(n, k, seed)
    logits = np.log(p)
    logits[np.arange(n), y] += 3.0
    q = np.exp(logits)
    return q / q.sum(1, keepdims=True), y


@pytest.mark.parametrize(("epsilon", "repeats"), [(float("inf"), 1), (4.0, 100)])
def test_macro_interval_adds_the_bucketing_bounds_linearly(epsilon, repeats):
    """Four buckets, nearly separable classes: every class's bucketed AUC falls short of its exact AUC by
    about its bound M_k, all with the same sign. Combined in quadrature the bounds give half the width needed
    (the old combination: coverage 0.00 at eps 4, and the noise-free interval missed); added linearly they
    cover (noise-free: always, the bound is then M_k itself)."""
    p, y = nearly_separable()
    out = run_multiclass_auc("hist", p, y, NAMES, epsilon, buckets=4, repeats=repeats, seed=3, show_progress=False)
    exact = roc_auc_score(y, p, multi_class="ovr", average="macro")
    assert exact - out["estimate"] > 0.005  # the bucketing error the interval has to reach
    if repeats == 1:
        assert out["ci95"][0] <= exact <= out["ci95"][1]
    else:
        assert out["ci_coverage"] >= 0.95 and out["ci_width"] < 0.05


def test_methods_without_a_multiclass_form_are_refused():
    assert set(multiclass_methods()) >= {"exact", "hist", "hist_gauss"} and "rr" not in multiclass_methods()
    p, y = scored(100)
    with pytest.raises(UserError, match="method 'rr' has no multiclass form; valid with --class-scores: "):
        run_multiclass_auc("rr", p, y, NAMES, 1.0)
    with pytest.raises(UserError, match="class 'fox' has 0 of 100 examples"):
        run_multiclass_auc("hist", p, np.minimum(y, 2), NAMES, 1.0)


@pytest.fixture
def score_file(tmp_path):
    p, y = scored(600)
    table = pd.DataFrame({f"p_{c}": p[:, k] for k, c in enumerate(NAMES)})
    table["label"] = np.array(NAMES)[y]
    path = tmp_path / "scores.csv"
    table.to_csv(path, index=False)
    return path, p, y


def test_cli_class_scores(score_file, capsys):
    path, p, y = score_file
    assert main(["auc", "--data", str(path), "--class-scores", "p_", "--method", "hist", "--epsilon", "inf",
                 "--json", "--quiet"]) in (0, None)
    out = json.loads(capsys.readouterr().out)
    assert out["classes"] == 4 and list(out["per_class"]) == NAMES
    assert out["estimate"] == pytest.approx(roc_auc_score(y, p, multi_class="ovr", average="macro"))


@pytest.mark.parametrize(("args", "message"), [
    (["--class-scores", "q_", "--method", "hist", "--epsilon", "1"], "--class-scores 'q_' matches 0 columns"),
    (["--class-scores", "p_", "--method", "rr", "--epsilon", "1"], "method 'rr' has no multiclass form"),
    (["--class-scores", "p_", "--method", "hist", "--epsilon", "1", "--runtime", "flower"], "in-process only"),
])
def test_cli_class_scores_mistakes_are_one_line(score_file, capsys, args, message):
    path, _, _ = score_file
    assert main(["auc", "--data", str(path), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and err.count("\n") == 0


def test_cli_label_without_a_score_column(score_file, capsys):
    path, _, _ = score_file
    table = pd.read_csv(path)
    table.loc[0, "label"] = "gnu"
    table.to_csv(path, index=False)
    assert main(["auc", "--data", str(path), "--class-scores", "p_", "--method", "hist", "--epsilon", "1"]) == 2
    assert "label 'gnu' of --label-col 'label' has no score column p_gnu" in capsys.readouterr().err
