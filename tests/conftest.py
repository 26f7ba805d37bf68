"""Shared fixtures: small, fast configurations."""

from __future__ import annotations

import pytest

from fedsim.config import ModelConfig, TrainConfig


def small_config(**overrides) -> TrainConfig:
    values = dict(dataset="synthetic_regression", rows=600, parties=2, epochs=3, batch_size=32, seed=0,
                  model=ModelConfig(embedding_dim=4, bottom_hidden=16, top_hidden=16))
    values.update(overrides)
    return TrainConfig(**values)


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
