"""The coverage benchmark's curve rows: every quantity reported with a band near nominal or above it."""

from __future__ import annotations

from fedsim.experiments.bench_eval_coverage import CURVE_RUNS, QUANTITIES, curve_rows


def test_curve_rows_cover_every_quantity():
    rows = curve_rows("breast_cancer", 40, 1.0, 3)
    assert len(rows) == len(CURVE_RUNS) * len(QUANTITIES)
    for row in rows:
        _, dataset, label, key, value, _worst, _ = row.split("|")
        assert dataset.strip() == "breast_cancer"
        # 40 releases: a standard error of 0.034 around 0.95 (the conservative Brier and ECE bands reach 1)
        assert "no valid interval" not in value
        assert 0.82 <= float(value.split()[0]) <= 1.0, row
