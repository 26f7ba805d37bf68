"""The grid file's schema: pydantic models of a grid's TOML (`GridSpec` and its tables) and its parsing.

Each model rejects unknown keys with the allowed ones, so a mistake is one line naming the key. Names
(datasets, attacks, defences, AUC methods) are checked against the registries in `names`, when a grid is
expanded into cells (`expansion`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from fedsim.config import TrainConfig
from fedsim.data import DATASETS
from fedsim.errors import UserError

Scalar = float | int | str | bool
# TrainConfig fields that the axes of a leakage study set, so `training` may not set them.
AXIS_FIELDS = {"dataset", "data", "target", "rows", "parties", "runtime", "seed", "label_defense",
               "gradient_defense", "epsilon", "delta", "defense_params"}



class Strict(BaseModel):
    """Rejects unknown keys with a message that lists the allowed ones."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, values: Any) -> Any:
        if isinstance(values, dict):
            unknown = sorted(set(values) - set(cls.model_fields))
            if unknown:
                raise ValueError(f"unknown key {unknown[0]!r}; allowed: {', '.join(cls.model_fields)}")
        return values


def _non_empty(name: str, values: list | None) -> list | None:
    if values is not None and len(values) == 0:
        raise ValueError(f"{name} is an empty list; give at least one value")
    return values


class Source(Strict):
    """A table: a built-in dataset (`name`, `rows` for synthetic ones) or a user file (`data` + `target`)."""

    name: str | None = None
    data: str | None = None
    target: str | None = None
    rows: int | None = Field(None, ge=2)
    optional: bool = False  # skip (with a note) when the dataset's optional extra is not installed

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, values: Any) -> Any:
        return {"name": values} if isinstance(values, str) else values

    @property
    def missing(self) -> bool:
        """An optional built-in dataset whose extra is not installed."""
        return self.optional and self.name in DATASETS and not DATASETS.get(self.name).available

    @model_validator(mode="after")
    def _one_table(self) -> Source:
        if (self.name is None) == (self.data is None):
            raise ValueError("give exactly one of name = DATASET or data = PATH (with target = COLUMN)")
        if self.data is not None and self.target is None:
            raise ValueError("data = PATH needs target = COLUMN")
        return self

    @property
    def label(self) -> str:
        return self.name if self.name is not None else Path(str(self.data)).stem


class AucSource(Source):
    """As `Source`, or `synthetic = NAME`: scores and labels from `fedsim.evaluation.synthetic_scores`."""

    synthetic: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _synthetic_alone(cls, values: Any) -> Any:
        if isinstance(values, dict) and values.get("synthetic") is not None:
            extra = sorted(set(values) - {"synthetic"})
            if extra:
                raise ValueError(f"synthetic = NAME takes no other key (got {extra[0]!r})")
            return {**values, "name": f"synthetic:{values['synthetic']}"}
        return values

    @property
    def label(self) -> str:
        return self.synthetic if self.synthetic is not None else super().label


class Sweep(Strict):
    """A defence parameter swept through values (for heuristics with no epsilon: noise scale, sparsity)."""

    param: str
    values: list[Scalar]

    @field_validator("values")
    @classmethod
    def _values(cls, values: list) -> list:
        return _non_empty("values", values)


class DefenseEntry(Strict):
    """One defence family: a label defence and/or a gradient defence, through its epsilons or a sweep."""

    label: str | None = None
    gradient: str | None = None
    epsilons: list[float] | None = None
    delta: float | None = Field(None, gt=0, lt=1)
    params: dict[str, Scalar] = Field(default_factory=dict)
    sweep: Sweep | None = None

    @field_validator("epsilons")
    @classmethod
    def _epsilons(cls, values: list[float] | None) -> list[float] | None:
        _non_empty("epsilons", values)
        bad = [v for v in values or [] if not v > 0]
        if bad:
            raise ValueError(f"every epsilon must be > 0, got {bad[0]}")
        return values

    @model_validator(mode="after")
    def _something_to_vary(self) -> DefenseEntry:
        if self.label is None and self.gradient is None and (self.epsilons or self.sweep or self.params):
            raise ValueError("epsilons/sweep/params need label = NAME or gradient = NAME (no defence takes none)")
        return self

    @property
    def name(self) -> str:
        return "+".join(n for n in (self.label, self.gradient) if n) or "none"


class AttackEntry(Strict):
    """An attack run on every cell's transcript, once per known-label fraction (or with `known` labels)."""

    name: str
    known_fractions: list[float] = Field(default_factory=lambda: [0.01])
    known: int | None = Field(None, ge=0)
    params: dict[str, Scalar] = Field(default_factory=dict)
    party: int = Field(0, ge=0)

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, values: Any) -> Any:
        return {"name": values} if isinstance(values, str) else values

    @field_validator("known_fractions")
    @classmethod
    def _fractions(cls, values: list[float]) -> list[float]:
        _non_empty("known_fractions", values)
        bad = [v for v in values if not 0 < v < 1]
        if bad:
            raise ValueError(f"known fractions must be in (0, 1), got {bad[0]}")
        return values


class AuditEntry(Strict):
    """A one-run canary audit beside every cell of the study (`fedsim.audit`): a second training run with
    canaries planted, so the results show each setting's empirical epsilon next to its formal one."""

    canaries: int | None = Field(None, ge=1)  # default: min(1000, half the training rows)
    confidence: float = Field(0.95, gt=0, lt=1)
    attack: str | None = None  # default: residual (regression), direction_scoring (binary)


class LeakageStudy(Strict):
    """Split training under defences, attacked by a curious feature party."""

    datasets: list[Source]
    parties: list[int] = Field(default_factory=lambda: [2])
    runtimes: list[Literal["local", "flower"]] = Field(default_factory=lambda: ["local"])
    seeds: list[int] = Field(default_factory=lambda: [0])
    defenses: list[DefenseEntry]
    attacks: list[AttackEntry]
    training: dict[str, Any] = Field(default_factory=dict)
    audit: AuditEntry | None = None

    @field_validator("datasets", "parties", "runtimes", "seeds", "defenses", "attacks")
    @classmethod
    def _axes(cls, values: list, info) -> list:
        return _non_empty(info.field_name, values)

    @field_validator("parties")
    @classmethod
    def _parties(cls, values: list[int]) -> list[int]:
        bad = [v for v in values if v < 1]
        if bad:
            raise ValueError(f"parties must be >= 1, got {bad[0]}")
        return values

    @field_validator("training")
    @classmethod
    def _training(cls, values: dict[str, Any]) -> dict[str, Any]:
        clash = sorted(set(values) & AXIS_FIELDS)
        if clash:
            raise ValueError(f"{clash[0]!r} is set by the grid's axes, not by training")
        allowed = sorted(set(TrainConfig.model_fields) - AXIS_FIELDS)
        unknown = sorted(set(values) - set(allowed))
        if unknown:
            raise ValueError(f"unknown key {unknown[0]!r}; allowed: {', '.join(allowed)}")
        return values


class AucMethodEntry(Strict):
    """A private AUC method; `delta` for the (epsilon, delta) ones (hist_gauss); `secure_aggregation` (hist,
    hist_gauss, clients >= 2) for one central noise shared by the clients, sized for `min_clients` of them;
    `bucketing` (mass | variance) for the bucket methods (`fedsim auc --bucketing`)."""

    name: str
    delta: float | None = Field(None, gt=0, lt=1)
    secure_aggregation: bool = False
    min_clients: int | None = Field(None, ge=1)
    bucketing: Literal["mass", "variance"] = "mass"

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, values: Any) -> Any:
        return {"name": values} if isinstance(values, str) else values


class AucStudy(Strict):
    """Private AUC: how far each method's estimate is from the exact AUC, over repeats."""

    sources: list[AucSource]
    methods: list[AucMethodEntry]
    epsilons: list[float]
    clients: list[int] = Field(default_factory=lambda: [1])
    buckets: list[int] | None = None
    thresholds: int = Field(100, ge=2)
    split: str = "iid"
    repeats: int = Field(20, ge=1)
    seeds: list[int] = Field(default_factory=lambda: [0])

    @field_validator("sources", "methods", "epsilons", "clients", "buckets", "seeds")
    @classmethod
    def _axes(cls, values: list | None, info) -> list | None:
        return _non_empty(info.field_name, values)

    @field_validator("epsilons")
    @classmethod
    def _epsilons(cls, values: list[float]) -> list[float]:
        bad = [v for v in values if not v > 0]
        if bad:
            raise ValueError(f"every epsilon must be > 0, got {bad[0]}")
        return values

    @field_validator("clients", "buckets")
    @classmethod
    def _positive(cls, values: list[int] | None, info) -> list[int] | None:
        bad = [v for v in values or [] if v < 1]
        if bad:
            raise ValueError(f"{info.field_name} must be >= 1, got {bad[0]}")
        return values


class GridSpec(Strict):
    """A whole grid file."""

    name: str
    description: str = ""
    leakage: list[LeakageStudy] | None = None  # one [leakage] table or several [[leakage]] tables
    auc: AucStudy | None = None

    @model_validator(mode="after")
    def _a_study(self) -> GridSpec:
        if self.leakage is None and self.auc is None:
            raise ValueError("a grid needs a [leakage] table, an [auc] table, or both")
        return self

    def skipped_sources(self) -> list[str]:
        """Optional datasets left out because their extra is not installed."""
        sources = [d for study in self.leakage or [] for d in study.datasets]
        sources += self.auc.sources if self.auc else []
        return sorted({s.label for s in sources if s.missing})


def parse_grid(raw: dict[str, Any], where: str = "grid") -> GridSpec:
    """A grid's parsed TOML as a validated `GridSpec`; the first schema error as one `UserError` line."""
    single = isinstance(raw.get("leakage"), dict)
    try:
        return GridSpec(**{**raw, "leakage": [raw["leakage"]]} if single else raw)
    except ValidationError as exc:
        message = one_line(exc)
        if single:  # a lone [leakage] table: no index in the key's name
            message = message.replace("leakage.0", "leakage", 1)
        raise UserError(f"{where}: {message}") from None


def one_line(exc: ValidationError) -> str:
    error = exc.errors()[0]
    loc = ".".join(str(p) for p in error["loc"] if not str(p).startswith(("function-", "tagged-union")))
    message = error["msg"].removeprefix("Value error, ")
    shown = f" (got {error['input']!r})" if error["type"] not in {"value_error", "missing"} else ""
    return f"{loc + ': ' if loc else ''}{message}{shown}"
