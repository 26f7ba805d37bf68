"""Shared fixtures: small, fast configurations."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
from fedsim_fixtures import small_config

from fedsim.config import TrainConfig
from fedsim.evaluation.methods import METHODS
from fedsim.registry import ATTACKS, GRADIENT_DEFENSES, LABEL_DEFENSES

EXAMPLE = Path(__file__).resolve().parents[1] / "docs" / "examples" / "example_plugin.py"


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


@pytest.fixture
def example_plugin(monkeypatch):
    """The docs' example plugin, registered into copies of the registries (undone after the test)."""
    for registry in (ATTACKS, LABEL_DEFENSES, GRADIENT_DEFENSES, METHODS):
        registry.names()  # load the built-in plugins first
        monkeypatch.setattr(registry, "_items", dict(registry._items))
    spec = importlib.util.spec_from_file_location("fedsim_example_plugin", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # pydantic resolves the annotations through it
    spec.loader.exec_module(module)
    return module
