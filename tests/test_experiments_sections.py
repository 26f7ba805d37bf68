"""Report sections that the former bench_* scripts needed (issue 18): one attack at several parameter settings
(labelled by its parameters), and a run with an active feature party (a section of its own)."""

from __future__ import annotations

import pandas as pd

from fedsim.experiments.report import build_report
from fedsim.experiments.runner import run_grid

GRID = """
name = "sections"

[[leakage]]
datasets = [{ name = "synthetic_multiclass", rows = 400 }]
seeds = [0]
defenses = [{}]
training = { epochs = 2, batch_size = 64 }
attacks = [{ name = "direction_scoring", known_fractions = [0.05] },
           { name = "direction_scoring", known_fractions = [0.05], params = { epochs = "all" } }]

[[leakage]]
datasets = [{ name = "synthetic_multiclass", rows = 400 }]
seeds = [0]
defenses = [{}]
training = { epochs = 2, batch_size = 64, malicious_update_scale = 5.0 }
attacks = [{ name = "active_model_completion", known_fractions = [0.05] }]
"""


def test_parameter_variants_and_active_party_get_their_own_labels_and_section(tmp_path):
    grid = tmp_path / "grid.toml"
    grid.write_text(GRID)
    out = tmp_path / "out"
    run_grid(grid, out, workers=1, show_progress=False)
    frame = pd.read_parquet(out / "results.parquet")
    assert set(frame["status"]) == {"ok"}
    active = frame[frame["attack"] == "active_model_completion"]
    assert list(active["malicious_update_scale"]) == [5.0] and list(active["malicious_party"]) == [0]
    assert frame.loc[frame["attack"] != "active_model_completion", "malicious_update_scale"].isna().all()
    text = build_report(out).path.read_text()
    assert "### synthetic_multiclass, 2 feature parties\n" in text
    assert "### synthetic_multiclass, 2 feature parties, party 0 active (update scale 5)\n" in text
    honest = text.split("party 0 active")[0]
    assert "direction_scoring accuracy" in honest and "direction_scoring (epochs=all) accuracy" in honest
    assert "active_model_completion" not in honest
