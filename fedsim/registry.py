"""Name -> object registries. The core owns them; plugin packages fill them.

`ATTACKS`, `LABEL_DEFENSES`, `GRADIENT_DEFENSES` and `AUC_METHODS` are filled by plugin packages that
announce themselves in the `fedsim.plugins` entry-point group (fedsim's own `fedsim.attacks` and
`fedsim.defenses`, or a third party's). The first lookup in any of them loads that group once, so the
core never names a plugin and the layers import one way only (docs/architecture.md).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from fedsim.errors import UserError

T = TypeVar("T")
PLUGIN_GROUP = "fedsim.plugins"
_plugins_loaded = False


def load_plugins() -> None:
    """Import every package of the `fedsim.plugins` entry-point group (once per process)."""
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True  # set first: the plugins' own registrations must not load again
    from importlib.metadata import entry_points  # ~40 ms: paid when a registry is first used, not by --help

    for entry in entry_points(group=PLUGIN_GROUP):
        entry.load()


class Registry(Generic[T]):
    """Maps names to objects; unknown names raise a `UserError` that lists the valid ones.

    With `names`, the registry supplies each registered class's `name` (its registration name), so a plugin
    writes its name once, in `register`; a class that sets another `name` itself is refused."""

    def __init__(self, kind: str, plugins: bool = False, names: bool = False) -> None:
        self.kind = kind
        self.plugins = plugins  # filled by plugin packages: load them before the first lookup
        self.names_classes = names
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def decorator(obj: T) -> T:
            self.add(name, obj)
            return obj

        return decorator

    def add(self, name: str, obj: T) -> None:
        if name in self._items:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        if self.names_classes and isinstance(obj, type):
            own = obj.__dict__.get("name", name)
            if own != name:
                raise ValueError(f"{self.kind} class {obj.__name__} is named {own!r} but registered as {name!r}")
            obj.name = name  # type: ignore[attr-defined]
        self._items[name] = obj

    def _loaded(self) -> dict[str, T]:
        if self.plugins:
            load_plugins()
        return self._items

    def get(self, name: str) -> T:
        items = self._loaded()
        if name not in items:
            raise UserError(f"unknown {self.kind} {name!r}; valid: {', '.join(sorted(items))}")
        return items[name]

    def names(self) -> list[str]:
        return sorted(self._loaded())

    def __contains__(self, name: object) -> bool:
        return name in self._loaded()

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())


ATTACKS: Registry[Any] = Registry("attack", plugins=True, names=True)
LABEL_DEFENSES: Registry[Any] = Registry("label defence", plugins=True, names=True)
GRADIENT_DEFENSES: Registry[Any] = Registry("gradient defence", plugins=True, names=True)
