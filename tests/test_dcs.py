"""VFLAIR's Defense Capability Score and the multiclass rows of grid reports."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from fedsim.experiments.expansion import expand
from fedsim.experiments.grid import load_grid
from fedsim.experiments.report import build_report
from fedsim.experiments.report_classification import dcs_frame
from fedsim.metrics import defense_capability_score


def test_dcs_matches_vflairs_formula():
    assert defense_capability_score(0.9, 0.0, 0.9) == 1.0  # the ideal point
    # D = sqrt(0.5 * 0.6^2 + 0.5 * 0.1^2)
    assert defense_capability_score(0.8, 0.6, 0.9) == pytest.approx(1 / (1 + math.sqrt(0.5 * 0.36 + 0.5 * 0.01)))
    assert defense_capability_score(0.95, 0.6, 0.9) == defense_capability_score(0.9, 0.6, 0.9)  # one-sided
    assert defense_capability_score(0.9, 0.6, 0.9, beta=1.0) == 1.0  # all weight on the main task


def results(task: str = "multiclass") -> pd.DataFrame:
    rows = []
    settings = [("none", None, 0.95, {"a": 0.9, "b": 0.5}), ("rr", 1.0, 0.85, {"a": 0.3, "b": 0.2}),
                ("rr", 8.0, 0.93, {"a": 0.8, "b": 0.45})]
    for defense, strength, mp, aps in settings:
        for seed in (0, 1):
            cell = f"{defense}{strength}{seed}"
            for attack, ap in aps.items():
                rows.append({"kind": "leakage", "cell": cell, "status": "ok", "error": None, "dataset": "digits",
                             "task": task, "parties": 2, "runtime": "local", "seed": seed, "defense": defense,
                             "strength_param": None if strength is None else "epsilon", "strength": strength,
                             "formal_epsilon": strength, "attack": attack, "known_fraction": 0.05,
                             "test_accuracy": mp + 0.01 * seed, "test_auc": 0.99, "attack_accuracy": ap,
                             "attack_auc": 0.9})
    return pd.DataFrame(rows)


def test_dcs_frame_scores_each_setting_against_the_undefended_accuracy():
    group = results()
    group["defense_key"], group["strength_key"], group["attack_label"] = group["defense"], group["strength"], \
        group["attack"]
    frame = dcs_frame(group).set_index(["defense_key", "strength_key"], drop=False)
    mp0 = 0.955  # mean over the two seeds
    row = frame.loc[("rr", 1.0)]
    assert row["mp"] == pytest.approx(0.855)
    assert row["dcs:a"] == pytest.approx(defense_capability_score(0.855, 0.3, mp0))
    assert row["t_dcs"] == pytest.approx((row["dcs:a"] + row["dcs:b"]) / 2)
    none = frame[frame["defense_key"] == "none"].iloc[0]
    assert none["dcs:a"] == pytest.approx(1 / (1 + math.sqrt(0.5) * 0.9))  # MP = MP*: only the attack counts


def test_report_has_multiclass_rows_and_the_dcs_table(tmp_path):
    results().to_parquet(tmp_path / "results.parquet")
    report = build_report(tmp_path)
    text = report.path.read_text()
    assert "1 - test accuracy" in text and "Defense Capability Score" in text and "T-DCS" in text
    assert any("highest T-DCS" in h and "rr ε=1" in h for h in report.headlines)


def test_grid_cells_keep_their_keys_without_the_new_fields():
    spec, _ = load_grid("quick")
    for cell in (c for c in expand(spec) if c.kind == "leakage"):
        assert not {"label_party_features", "malicious_party", "malicious_update_scale"} & set(cell.config["train"])
