"""The two registries (name -> defence class), apart from `defenses/__init__.py` so modules can import them."""

from __future__ import annotations

from fedsim.registry import Registry

LABEL_DEFENSES: Registry = Registry("label defence")
GRADIENT_DEFENSES: Registry = Registry("gradient defence")
