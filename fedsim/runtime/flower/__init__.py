"""The Flower runtime: the label party as a `ServerApp`, each feature party as a `ClientApp` (Message API).

`train_flower` runs them in Flower's simulation engine; `fedsim.runtime.flower.server:app` and
`fedsim.runtime.flower.client:app` are the components `flwr run .` deploys (see `[tool.flwr.app]`).
"""

from fedsim.runtime.flower.simulation import train_flower

__all__ = ["train_flower"]
