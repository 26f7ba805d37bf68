"""The Flower app components that `flwr run .` loads (`[tool.flwr.app.components]` in pyproject.toml).

The label party is the ServerApp (it reads its settings from the run config) and each feature party a
ClientApp; both are thin shells over the core runtime in `server.py` and `client.py`.

Each component is built on first access (module `__getattr__`), so a deployed node's ClientApp process,
started anew for every message, imports the feature party's code only, not the ServerApp's (the label party,
defences, pandas). `__all__` names both, which is where Flower's object-reference check looks for them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flwr.clientapp import ClientApp
    from flwr.serverapp import ServerApp

__all__ = ["client_app", "server_app"]
client_app: ClientApp  # declared only: built by __getattr__ below
server_app: ServerApp


def __getattr__(name: str) -> Any:
    if name == "client_app":
        from fedsim.runtime.flower.client import feature_app

        app = feature_app()
    elif name == "server_app":
        from flwr.serverapp import ServerApp

        from fedsim.runtime.flower.server import run_from_context

        app = ServerApp()
        app.main()(run_from_context)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = app  # built once per process
    return app
