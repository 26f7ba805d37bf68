"""The Flower app components that `flwr run .` loads (`[tool.flwr.app.components]` in pyproject.toml).

The label party is the ServerApp (it reads its settings from the run config) and each feature party a
ClientApp; both are thin shells over the core runtime in `server.py` and `client.py`.
"""

from __future__ import annotations

from flwr.serverapp import ServerApp

from fedsim.runtime.flower.client import feature_app
from fedsim.runtime.flower.server import run_from_context

server_app = ServerApp()
server_app.main()(run_from_context)
client_app = feature_app()
