"""The coverage benchmark's curve rows: every quantity reported, ECE withheld, the bands near nominal."""

from __future__ import annotations

from fedsim.experiments.bench_eval_coverage import CURVE_RUNS, QUANTITIES, curve_rows


def test_curve_rows_cover_every_quantity_and_withhold_ece():
    rows = curve_rows("breast_cancer", 40, 1.0, 3)
    assert len(rows) == len(CURVE_RUNS) * len(QUANTITIES)
    for row in rows:
        _, dataset, label, key, value, _worst, _ = row.split("|")
        assert dataset.strip() == "breast_cancer"
        if key.strip() == "ece":
            assert "no valid interval" in value
        else:
            # 40 releases: a standard error of 0.034 around 0.95 (Brier's conservative band reaches 1)
            assert 0.82 <= float(value.split()[0]) <= 1.0, row
