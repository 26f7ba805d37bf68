"""fedsim: a simulator for label privacy in vertical federated learning and split learning."""

__version__ = "0.1.0"
