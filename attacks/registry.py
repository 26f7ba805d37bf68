"""The attack registry (name -> Attack subclass); `import attacks` fills it."""

from __future__ import annotations

from fedsim.registry import Registry

ATTACKS: Registry = Registry("attack")
