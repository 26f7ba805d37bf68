"""Shared fixtures: small, fast configurations."""

from __future__ import annotations

import pytest
from fedsim_fixtures import small_config

from fedsim.config import TrainConfig


@pytest.fixture
def config() -> TrainConfig:
    return small_config()


@pytest.fixture()
def csv(tmp_path):
    """Writes scores and labels to a score,label CSV and returns its path (the `fedsim auc --data` input)."""
    def write(scores, labels) -> str:
        path = tmp_path / "scores.csv"
        path.write_text("score,label\n" + "".join(f"{s},{y}\n" for s, y in zip(scores, labels, strict=True)))
        return str(path)
    return write
