"""Curves and metrics from one count release (fedsim.evaluation.curves), the release ledger and its budget."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_curve

from fedsim.cli.app import main
from fedsim.evaluation import run_auc, synthetic_scores
from fedsim.evaluation.curves import (
    count_release,
    curve_intervals,
    curve_metrics,
    curve_rng,
    curves_report,
    exact_metrics,
    project_counts,
)
from fedsim.evaluation.driver import make_settings, owners, split_clients
from fedsim.evaluation.mann_whitney import bucketed_auc


@pytest.mark.parametrize("projection", ["box", "isotonic"])
def test_projection_keeps_counts_feasible(projection) -> None:
    rng = np.random.default_rng(3)
    sizes = rng.integers(1, 40, size=60)
    noisy = rng.binomial(sizes, np.linspace(0.05, 0.95, 60)) + rng.laplace(0, 5, 60)
    fitted = project_counts(noisy, sizes, projection)
    assert np.all(fitted >= 0) and np.all(fitted <= sizes + 1e-9)
    assert np.all(np.diff(np.cumsum(fitted)) >= 0) and np.all(np.diff(np.cumsum(sizes - fitted)) >= -1e-9)
    if projection == "isotonic":
        assert np.all(np.diff(fitted / sizes) >= -1e-9)
        assert np.mean(np.diff(noisy / sizes) < 0) > 0.2  # the input was not monotone: the projection did work
    feasible = np.clip(noisy, 0, sizes)
    assert np.array_equal(project_counts(feasible, sizes, "box"), feasible)  # feasible counts are kept


def _release(method: str, epsilon: float | None, name: str = "breast_cancer", repeat: int = 0):
    scores, labels = synthetic_scores(name, 0)
    settings = make_settings(method, epsilon, None, None, 100)
    release = count_release(method, settings, scores, labels, split_clients(scores, 1, "iid", 0), None, 0, repeat)
    return scores, labels, release


def test_curves_match_sklearn_on_the_exact_counts() -> None:
    scores, labels, release = _release("exact", None)
    metrics = curve_metrics(release.noisy, release)
    fpr, tpr, _ = roc_curve(labels, scores, drop_intermediate=False)
    ours_roc = sorted(set(zip(metrics["fpr"], metrics["tpr"], strict=True)))
    assert np.allclose(sorted(zip(fpr, tpr, strict=True)), ours_roc, atol=1e-12)
    precision, recall, _ = precision_recall_curve(labels, scores)
    ours = {(round(r, 12), round(p, 12)) for r, p in zip(metrics["tpr"][:-1], metrics["precision"], strict=True)}
    assert {(round(r, 12), round(p, 12)) for r, p in zip(recall[:-1], precision[:-1], strict=True)} == ours
    ap = metrics["average_precision_at_thresholds"]
    assert ap == pytest.approx(average_precision_score(labels, scores), abs=1e-12)
    brier = np.mean((scores - labels) ** 2)
    assert metrics["brier"] == pytest.approx(brier, abs=1e-12)  # one bucket per distinct score: exact
    bands = curve_intervals(release, curve_rng(0, 0), draws=50)
    assert np.allclose(bands["tpr"][0], np.clip(metrics["tpr"], 0, 1), atol=1e-9)  # no noise: zero-width bands


def test_curve_release_is_the_auc_release() -> None:
    """The curves post-process release 0, the one the AUC came from, and equal the in-process re-release."""
    scores, labels = synthetic_scores("breast_cancer", 0)
    for kwargs in ({}, {"clients": 4, "secure_aggregation": True}):
        auc = run_auc("hist", scores, labels, 1.0, show_progress=False, curves="box", **kwargs)
        curves = auc["curves"]
        assert curves["auc"] == auc["estimate_raw"] and curves["auc_ci95"] == pytest.approx(auc["ci95"])
        parts = split_clients(scores, kwargs.get("clients", 1), "iid", 0)
        again = count_release("hist", make_settings("hist", 1.0, None, None, 100), scores, labels, parts,
                              owners(parts, scores.size), 0, 0, kwargs.get("secure_aggregation", False))
        assert bucketed_auc(again.noisy, again.sizes) == curves["auc"]
        assert again.sizes.tolist() == curves["bucket_sizes"]


@pytest.mark.parametrize(("method", "name"), [("hist", "rare_positive"), ("hist_gauss", "breast_cancer")])
def test_bands_cover_the_exact_curves(method, name) -> None:
    """Each band covers what its key names: values at the released thresholds, and the raw scores' Brier."""
    hits: dict[str, list[float]] = {}
    for repeat in range(100):
        scores, labels, release = _release(method, 1.0, name, repeat)
        truth = exact_metrics(scores, labels, release)
        bands = curve_intervals(release, curve_rng(0, repeat), 200)
        for key in ("tpr", "fpr", "precision", "f1", "calibration", "average_precision_at_thresholds", "brier"):
            low, high = bands[key]
            inside = (low <= truth[key] + 1e-12) & (truth[key] <= high + 1e-12)
            hits.setdefault(key, []).append(float(np.mean(inside[~np.isnan(truth[key])])))
    coverage = {key: np.mean(v) for key, v in hits.items()}
    brier = coverage.pop("brier")
    assert all(0.90 <= c <= 0.99 for c in coverage.values()) and brier >= 0.95, (coverage, brier)


@pytest.mark.parametrize(("secure", "releases", "lowest", "highest"), [(False, 300, 0.941, 0.96),
                                                                      (True, 100, 0.95, 0.985)])
def test_public_denominator_bands_use_the_noise_laws_own_quantiles(secure, releases, lowest, highest) -> None:
    """40 buckets of 100 rows, none near 0 or 1 (no clipping): each calibration rate carries one noise term,
    and a +-1.96 sd band covers a single Laplace term 0.937 and a discrete-Laplace one (secure aggregation,
    eps 1) 0.927. The bands from the law's quantiles cover 0.95, and at least 0.95 for the integer law (s.e.
    0.002); so does precision, whose top thresholds sum one or a few terms."""
    scores = np.repeat(np.linspace(0.05, 0.95, 40), 100)
    labels = (np.random.default_rng(0).uniform(size=scores.size) < 0.5).astype(np.int8)
    settings = make_settings("hist", 1.0, None, 40, 100)
    parts = split_clients(scores, 10 if secure else 1, "iid", 0)
    hits: dict[str, list[float]] = {"calibration": [], "precision": []}
    for repeat in range(releases):
        release = count_release("hist", settings, scores, labels, parts, owners(parts, scores.size), 0, repeat,
                                secure)
        truth = exact_metrics(scores, labels, release)
        bands = curve_intervals(release, curve_rng(0, repeat))
        for key, hit in hits.items():
            low, high = bands[key]
            hit.append(np.mean((low <= truth[key] + 1e-12) & (truth[key] <= high + 1e-12)))
    assert lowest <= np.mean(hits["calibration"]) <= highest, np.mean(hits["calibration"])
    assert 0.94 <= np.mean(hits["precision"]) <= 0.985, np.mean(hits["precision"])


@pytest.mark.parametrize("positives_at", ["top", "bottom"])
def test_brier_interval_without_noise_is_exactly_what_the_counts_allow(positives_at) -> None:
    """No noise, four mixed buckets holding 5 / 20 / 35 / 50 positives of 50: the Brier interval is the range
    every within-bucket order of those counts spans, no wider. Positives on the highest scores of each bucket
    give its lower end, on the lowest its upper end (the full bucket adds nothing: it is pure)."""
    scores = np.sort(np.random.default_rng(0).uniform(0, 1, 200))
    labels = np.zeros(200, dtype=np.int8)
    for bucket, count in enumerate((5, 20, 35, 50)):
        rows = np.arange(50 * bucket, 50 * bucket + 50)
        labels[rows[-count:] if positives_at == "top" else rows[:count]] = 1
    release = count_release("hist", make_settings("hist", math.inf, None, 4, 100), scores, labels,
                            [np.arange(200)], None, 0, 0)
    assert release.noisy.tolist() == [5, 20, 35, 50]
    low, high = curve_intervals(release, curve_rng(0, 0), 50)["brier"]
    truth = float(exact_metrics(scores, labels, release)["brier"])
    assert truth == pytest.approx(float(low if positives_at == "top" else high), abs=1e-12)
    assert high - low > 0.05  # mixed buckets: the order matters


def _ece_coverage(rates: list[float], size: int, releases: int = 200) -> tuple[float, float, float]:
    """Five score levels 0.1..0.9 with `size` rows each and the given positive rates: ECE interval coverage,
    mean width, and the width of the L1 bound q95(||e||_1) / n on both sides (what ECE had before)."""
    scores = np.repeat(np.array([0.1, 0.3, 0.5, 0.7, 0.9]), size)
    labels = np.concatenate([np.r_[np.ones(round(size * r)), np.zeros(size - round(size * r))]
                             for r in rates]).astype(np.int8)
    settings = make_settings("hist", 1.0, None, None, 100)
    covered, widths = [], []
    for repeat in range(releases):
        release = count_release("hist", settings, scores, labels, [np.arange(scores.size)], None, 0, repeat)
        truth = float(exact_metrics(scores, labels, release)["ece"])
        low, high = curve_intervals(release, curve_rng(0, repeat), 200)["ece"]
        covered.append(low <= truth + 1e-12 <= high + 2e-12)
        widths.append(float(high - low))
    l1_bound = float(np.quantile(np.abs(release.draw(20_000, np.random.default_rng(0))).sum(axis=1), 0.95))
    return float(np.mean(covered)), float(np.mean(widths)), 2 * l1_bound / scores.size


def test_ece_interval_holds_where_every_bucket_is_calibrated() -> None:
    """The least favourable case for ECE: every bucket calibrated (ECE 0), so the noisy |c_b - n_b s_b| sits
    above the truth in every release (a bootstrap band around it covered 0.85 here); the interval still holds
    (about 0.98 by construction: only its lower end can miss)."""
    coverage, _, _ = _ece_coverage([0.1, 0.3, 0.5, 0.7, 0.9], 40)
    assert coverage >= 0.95, coverage


def test_ece_interval_is_near_nominal_and_narrow_where_every_gap_exceeds_the_noise() -> None:
    """Gaps of 40 counts against Laplace(1) noise: no sign can flip, the error is sum_b +-e_b, and the interval
    is that sum's (about 0.955), far narrower than a bound on ||e||_1 that ignores the gaps."""
    coverage, width, l1_width = _ece_coverage([0.3, 0.1, 0.3, 0.5, 0.7], 200)
    assert 0.92 <= coverage <= 0.99, coverage
    assert width < 0.8 * l1_width, (width, l1_width)


def test_average_precision_is_named_for_the_released_thresholds(capsys) -> None:
    """The AP key is scikit-learn's AP of the bucket index, not of the raw scores (rare_positive, B = 30: they
    differ by far more than the noise), and the CLI says so; the exact block's Brier is the raw scores' one."""
    scores, labels, release = _release("hist", 1.0, "rare_positive")  # B = 30 quantile buckets
    bucketed = np.searchsorted(release.edges, scores, "left")
    truth = exact_metrics(scores, labels, release)
    assert truth["average_precision_at_thresholds"] == pytest.approx(average_precision_score(labels, bucketed))
    assert average_precision_score(labels, scores) - truth["average_precision_at_thresholds"] > 0.05
    assert truth["brier"] == pytest.approx(np.mean((scores - labels) ** 2))
    assert main(["auc", "--synthetic", "rare_positive", "--method", "hist", "--epsilon", "1", "--buckets", "30",
                 "--curves", "--quiet"]) in (0, None)
    text = " ".join(capsys.readouterr().out.split())
    assert "average precision at the 30 released thresholds (not scikit-learn's AP of the raw scores)" in text


@pytest.mark.parametrize("method", ["dpauc", "naive_rr"])
def test_biased_methods_print_no_interval(method) -> None:
    scores, labels = synthetic_scores("breast_cancer", 0)
    result = run_auc(method, scores, labels, 1.0, show_progress=False)
    assert result["ci95"] is None and result["ci95_interval"].startswith("no valid interval: ")


def test_curves_spend_no_epsilon_and_the_budget_refuses_an_overrun(tmp_path, capsys) -> None:
    plain, with_curves = tmp_path / "plain.json", tmp_path / "curves.json"
    base = ["auc", "--synthetic", "breast_cancer", "--method", "hist", "--epsilon", "1", "--json"]
    assert main([*base, "--ledger", str(plain)]) == 0
    assert main([*base, "--curves", "--ledger", str(with_curves), "--plot", str(tmp_path / "f.png")]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["ledger"]["epsilon_spent"] == 1.0 and (tmp_path / "f.png").stat().st_size > 10_000
    assert len(out["curves"]["tpr"]) == len(out["curves"]["bucket_sizes"]) + 1
    rows = [json.loads(p.read_text())["releases"] for p in (plain, with_curves)]
    assert [[r["epsilon"] for r in rs] for rs in rows] == [[1.0], [1.0]]  # the curves cost nothing more
    before = with_curves.read_text()
    assert main([*base, "--epsilon", "1.5", "--ledger", str(with_curves), "--budget", "2"]) == 2
    assert "refused" in capsys.readouterr().err and with_curves.read_text() == before
    assert main([*base, "--ledger", str(with_curves), "--budget", "2"]) == 0  # 1 + 1 = 2: within the budget
    assert main(["auc", "--synthetic", "breast_cancer", "--method", "exact", "--ledger", str(plain), "--budget",
                 "100"]) == 2  # no noise: an infinite cost


@pytest.mark.parametrize("projection", ["box", "isotonic"])
def test_every_reported_estimate_lies_inside_its_own_interval(projection) -> None:
    """The estimates come from projected counts and the intervals from the raw ones, so before the report
    took their hull the ECE or Brier estimate fell outside its interval in a few of 200 releases."""
    for repeat in range(40):
        _, _, release = _release("hist", 1.0, "rare_positive", repeat)
        report = curves_report(release, projection, curve_rng(0, repeat))
        for key in ("average_precision_at_thresholds", "ece", "brier"):
            low, high = report[f"{key}_ci95"]
            assert low <= report[key] <= high, (key, repeat)
        for key in ("tpr", "fpr", "precision", "f1", "calibration"):
            band = report[f"{key}_band"]
            for value, low, high in zip(report[key], band["low"], band["high"], strict=True):
                assert value is None or low <= value <= high, (key, repeat)
