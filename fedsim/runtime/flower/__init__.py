"""The Flower runtime: the label party as a `ServerApp`, each feature party as a `ClientApp` (Message API).

`train_flower` runs them in Flower's simulation engine; `fedsim.runtime.flower.apps:server_app` and
`fedsim.runtime.flower.apps:client_app` are the components `flwr run .` deploys (see `[tool.flwr.app]`).

`train_flower` is looked up on first use: a deployed node imports this package in every ClientApp process
(one per message), which must not pay for the simulation engine, the ServerApp and pandas.
"""

from __future__ import annotations

from typing import Any

__all__ = ["train_flower"]


def __getattr__(name: str) -> Any:
    if name == "train_flower":
        from fedsim.runtime.flower.simulation import train_flower

        return train_flower
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
