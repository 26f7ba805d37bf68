"""Label-inference attacks run by a curious feature party, one module per attack, a registry by name."""

from __future__ import annotations

from fedsim.registry import Registry

ATTACKS: Registry = Registry("attack")
