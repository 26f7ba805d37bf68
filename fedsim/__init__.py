"""fedsim: a simulator for label privacy in vertical federated learning and split learning."""

from importlib import metadata

__version__ = metadata.version("fedsim")
