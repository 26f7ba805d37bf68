"""Validated settings of one training run (pydantic): the CLI, the Flower app and the sweeps share them."""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from fedsim.errors import UserError
from fedsim.registry import GRADIENT_DEFENSES, LABEL_DEFENSES


class ModelConfig(BaseModel):
    """Architecture of the bottom MLPs (one per feature party) and the top model."""

    model_config = ConfigDict(extra="forbid")

    embedding_dim: int = Field(16, ge=1)
    bottom_hidden: int = Field(64, ge=1)
    bottom_depth: int = Field(1, ge=0)
    top_hidden: int = Field(64, ge=1)
    top_depth: int = Field(1, ge=0)
    top_model: Literal["mlp", "linear", "sum"] = "mlp"


class TrainConfig(BaseModel):
    """Everything that determines a training run; same config + same seed => same transcript."""

    model_config = ConfigDict(extra="forbid")

    dataset: str | None = "diabetes"
    data: str | None = None
    target: str | None = None
    id_column: str | None = None
    rows: int | None = Field(None, ge=2)
    task: Literal["regression", "binary", "multiclass"] | None = None
    parties: int = Field(2, ge=1)
    label_party_features: int = Field(0, ge=0)  # columns the label party keeps for its own bottom model
    partition: Literal["contiguous", "random"] = "contiguous"
    test_fraction: float = Field(0.2, gt=0, lt=1)
    runtime: Literal["local", "flower"] = "local"
    epochs: int = Field(20, ge=1)
    batch_size: int = Field(64, ge=1)
    lr: float = 1e-3
    optimizer: Literal["adam", "sgd"] = "adam"
    seed: int = 0
    model: ModelConfig = Field(default_factory=ModelConfig)
    label_defense: str | None = None
    gradient_defense: str | None = None
    epsilon: float | None = None
    delta: float | None = None
    defense_params: dict[str, float | int | str | bool] = Field(default_factory=dict)
    record_last_epochs: int | None = Field(None, ge=1)
    local_steps: int = Field(1, ge=1)  # FedBCD: updates per exchange, every party reusing what it last received
    # an actively malicious feature party (Fu et al.): its own step-size multiplier, recorded with the run
    malicious_party: int = Field(0, ge=0)
    malicious_update_scale: float = Field(1.0, gt=0)

    @field_validator("lr")
    @classmethod
    def _positive_lr(cls, lr: float) -> float:
        if not (math.isfinite(lr) and lr > 0):
            raise ValueError(f"learning rate must be a finite number > 0, got {lr}")
        return lr

    @model_validator(mode="after")
    def _one_source(self) -> TrainConfig:
        if self.data is not None:
            if self.target is None:
                raise ValueError("--data needs --target COLUMN")
            self.dataset = None
        elif self.dataset is None:
            raise ValueError("give --dataset NAME or --data PATH --target COLUMN")
        return self

    @model_validator(mode="after")
    def _privacy_needs_a_mechanism(self) -> TrainConfig:
        """--epsilon/--delta without a defence would be silently ignored and the run would look private."""
        defended = self.label_defense is not None or self.gradient_defense is not None
        if self.epsilon is not None and not defended:
            raise ValueError(f"--epsilon needs a defence: add {_defence_flags()}")
        if self.delta is not None and not (defended or "top_dp_epsilon" in self.defense_params):
            raise ValueError(f"--delta needs a defence or top-model DP-SGD (--defense-param top_dp_epsilon=EPS): "
                             f"add {_defence_flags()}")
        return self

    @model_validator(mode="after")
    def _malicious_party_exists(self) -> TrainConfig:
        if self.malicious_party >= self.parties:
            raise ValueError(f"malicious party {self.malicious_party} does not exist: feature parties are "
                             f"0..{self.parties - 1}")
        return self

    @property
    def source_name(self) -> str:
        return self.dataset if self.dataset is not None else str(self.data)


def _defence_flags() -> str:
    label = "|".join(LABEL_DEFENSES.names())
    gradient = "|".join(GRADIENT_DEFENSES.names())
    return f"--label-defense {label} or --gradient-defense {gradient}"


def validated(schema: type[BaseModel], **values) -> BaseModel:
    """Build a pydantic model, turning the first validation error into a one-line `UserError`.

    A field's error names the field and the value given; a cross-field rule (empty location) prints only its
    message, never the whole config.
    """
    try:
        return schema(**values)
    except ValidationError as exc:
        error = exc.errors()[0]
        message = error["msg"].removeprefix("Value error, ")
        if not error["loc"]:  # a rule across fields: its message names the flags; the input is the whole config
            raise UserError(message) from None
        where = ".".join(str(p) for p in error["loc"]).replace("_", "-")
        raise UserError(f"{where}: {message} (got {error.get('input')!r})") from None
