"""What a report reader relies on: the set-up is stated, interval coverage that is off is flagged."""

from __future__ import annotations

import pandas as pd
import pytest

from fedsim.experiments.report_auc import coverage_is_off
from fedsim.experiments.report_setup import setup_section


@pytest.mark.parametrize(("coverage", "repeats", "off"), [
    (0.0, 20, True), (0.70, 20, True), (0.95, 20, False), (1.0, 20, False), (0.80, 5, False), (0.6, 100, True),
])
def test_coverage_outside_its_binomial_range_is_flagged(coverage, repeats, off):
    assert coverage_is_off(pd.Series({"coverage": coverage, "repeats": repeats})) is off


def test_setup_section_states_the_settings(tmp_path):
    (tmp_path / "grid.toml").write_text('name = "t"\n[leakage.training]\nrecord_last_epochs = 1\n')
    frame = pd.DataFrame([{"kind": "leakage", "dataset": "diabetes", "parties": 2, "batch_size": 64, "lr": 0.003,
                           "epochs": 20, "runtime": "local", "known_fraction": 0.01, "known_labels": 3,
                           "defense_params": '{"high": 346, "low": 25}', "seed": s, "n_train": 353, "n_test": 89,
                           "version_torch": "2.5.1"} for s in (0, 1)])
    text = setup_section(tmp_path, frame)
    for expected in ("sha256", "| batch size | 64 |", "| seeds | 0, 1 |", "353 / 89", "the last 1", "torch 2.5.1",
                     '"low": 25', "embedding_dim="):
        assert expected in text, expected
