"""Benchmark grids in TOML: a validated schema, expansion into cells, and each cell's config hash.

A grid has up to two kinds of study. `[leakage]` (or several `[[leakage]]` tables, e.g. one per dataset
with its own public label range): datasets x feature parties x runtimes x defences (each through
its epsilons or a swept strength parameter) x seeds, where every cell trains once and then runs all the
listed attacks (each at its known-label fractions) on the same transcript; with `[leakage.audit]`, each
cell also runs a one-run canary audit (its own training run). `[auc]`: score sources x
methods x epsilons x clients x buckets x seeds for private AUC. Every mistake in a grid file is reported
as one line naming the key and what is allowed, before any work starts.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from fedsim.assembly import resolve_defenses
from fedsim.config import TrainConfig
from fedsim.data import DATASETS
from fedsim.errors import UserError, check
from fedsim.evaluation import METHODS, SYNTHETIC
from fedsim.evaluation.driver import make_settings
from fedsim.evaluation.methods import check_layout
from fedsim.evaluation.secure_aggregation import check_secure
from fedsim.params import validate_params
from fedsim.registry import ATTACKS, GRADIENT_DEFENSES, LABEL_DEFENSES

Scalar = float | int | str | bool
CELL_FORMAT = 1  # bump when the meaning of a cell's config changes: old results are then recomputed
AUC_CELL_FORMAT = 2  # AUC cells only; 2: estimates clipped to [0, 1], test-inversion intervals (issue 12)
# TrainConfig fields added after CELL_FORMAT 1, left out of a cell's config at their default so that the
# cells of existing grids keep their keys (and a re-run keeps resuming).
LATER_FIELDS = {"label_party_features": 0, "malicious_party": 0, "malicious_update_scale": 1.0}
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
    hist_gauss, clients >= 2) for one central noise shared by the clients, sized for `min_clients` of them."""

    name: str
    delta: float | None = Field(None, gt=0, lt=1)
    secure_aggregation: bool = False
    min_clients: int | None = Field(None, ge=1)

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


@dataclass(frozen=True)
class Cell:
    """One unit of work: `config` is everything that determines its result; `key` hashes it."""

    kind: str  # "leakage" | "auc"
    config: dict[str, Any]
    labels: dict[str, Any] = field(default_factory=dict)  # display columns derived from the config

    @property
    def key(self) -> str:
        return config_hash(self.config)


def config_hash(config: dict[str, Any]) -> str:
    """A stable 16-hex-digit key of a cell's config (canonical JSON, sorted keys)."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


SHIPPED = "grids"


def shipped_grids() -> list[str]:
    """Names of the grids that ship with the package (`quick`, ...)."""
    folder = resources.files("fedsim.experiments") / SHIPPED
    return sorted(p.name.removesuffix(".toml") for p in folder.iterdir() if p.name.endswith(".toml"))


def resolve_grid_path(grid: str | Path) -> Path:
    """A path to a TOML file, or the name of a shipped grid."""
    path = Path(grid)
    if path.is_file():
        return path
    if path.suffix == "" and str(grid) in shipped_grids():
        return Path(str(resources.files("fedsim.experiments") / SHIPPED / f"{grid}.toml"))
    raise UserError(f"grid file {str(grid)!r} does not exist; give a TOML path or one of: "
                    f"{', '.join(shipped_grids())}")


def load_grid(grid: str | Path) -> tuple[GridSpec, str]:
    """Read, parse and fully validate a grid (schema and names); returns the spec and the file's text."""
    path = resolve_grid_path(grid)
    text = path.read_text()
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{path.name}: malformed TOML: {exc}") from None
    spec = parse_grid(raw, path.name)
    expand(spec, path.name)  # validates every cell's training config and the names it uses
    return spec, text


def parse_grid(raw: dict[str, Any], where: str = "grid") -> GridSpec:
    single = isinstance(raw.get("leakage"), dict)
    try:
        return GridSpec(**{**raw, "leakage": [raw["leakage"]]} if single else raw)
    except ValidationError as exc:
        message = _one_line(exc)
        if single:  # a lone [leakage] table: no index in the key's name
            message = message.replace("leakage.0", "leakage", 1)
        raise UserError(f"{where}: {message}") from None


def _one_line(exc: ValidationError) -> str:
    error = exc.errors()[0]
    loc = ".".join(str(p) for p in error["loc"] if not str(p).startswith(("function-", "tagged-union")))
    message = error["msg"].removeprefix("Value error, ")
    shown = f" (got {error['input']!r})" if error["type"] not in {"value_error", "missing"} else ""
    return f"{loc + ': ' if loc else ''}{message}{shown}"


def expand(spec: GridSpec, where: str = "grid") -> list[Cell]:
    """All cells of a grid, in a stable order, without duplicates; raises UserError on a bad name."""
    cells: list[Cell] = []
    for index, study in enumerate(spec.leakage or []):
        cells += _leakage_cells(study, where, "leakage" if len(spec.leakage) == 1 else f"leakage.{index}")
    if spec.auc is not None:
        cells += _auc_cells(spec.auc, where)
    unique: dict[str, Cell] = {}
    for cell in cells:
        unique.setdefault(cell.key, cell)
    return list(unique.values())


def _leakage_cells(study: LeakageStudy, where: str, at: str) -> list[Cell]:
    checker = NameChecker(where)
    cells = []
    for d_index, source in enumerate(study.datasets):
        if source.missing:
            continue
        task = checker.dataset(source, f"{at}.datasets.{d_index}")
        for a_index, attack in enumerate(study.attacks):
            checker.attack(attack, task, f"{at}.attacks.{a_index}")
        if study.audit is not None and study.audit.attack is not None:
            checker.attack(AttackEntry(name=study.audit.attack), task, f"{at}.audit.attack")
        audit = {} if study.audit is None else {"audit": study.audit.model_dump()}
        attacks = [
            {"name": a.name, "known_fraction": f, "known": a.known, "params": a.params, "party": a.party}
            for a in study.attacks for f in ([None] if a.known is not None else a.known_fractions)
        ]
        for parties in study.parties:
            bad_party = [a.party for a in study.attacks if a.party >= parties]
            check(not bad_party, f"{where}: {at}.attacks: party {bad_party[:1]} does not exist with "
                                 f"{parties} feature parties (allowed 0..{parties - 1})")
            for runtime in study.runtimes:
                for e_index, defense in enumerate(study.defenses):
                    for variant in _defense_variants(defense):
                        for seed in study.seeds:
                            values = {**study.training, "dataset": source.name, "data": source.data,
                                      "target": source.target, "rows": source.rows, "parties": parties,
                                      "runtime": runtime, "seed": seed, **variant["train"]}
                            config = _train_config(values, f"{where}: {at}.training")
                            checker.defenses(config, task, f"{at}.defenses.{e_index}")
                            cells.append(Cell("leakage", {
                                "format": CELL_FORMAT, "kind": "leakage",
                                "train": train_dump(config), "attacks": attacks, **audit,
                            }, {"dataset": source.label, "task": task, "defense": variant["name"],
                                "strength": variant["strength"], "strength_param": variant["strength_param"]}))
    return cells


def train_dump(config: TrainConfig) -> dict[str, Any]:
    """A cell's training config as JSON, without the `LATER_FIELDS` that are at their default."""
    dump = config.model_dump(mode="json")
    return {k: v for k, v in dump.items() if not (k in LATER_FIELDS and v == LATER_FIELDS[k])}


def _defense_variants(defense: DefenseEntry) -> list[dict[str, Any]]:
    """One entry per (epsilon, swept value): the TrainConfig fields and the display name and strength."""
    epsilons = defense.epsilons or [None]
    sweep = [(defense.sweep.param, v) for v in defense.sweep.values] if defense.sweep else [(None, None)]
    variants = []
    for epsilon in epsilons:
        for param, value in sweep:
            params = dict(defense.params)
            name = defense.name
            if param is not None:
                params[param] = value
                if epsilon is not None:  # both vary: the line is per swept value, the strength is epsilon
                    name = f"{name} ({param}={value})"
            strength, strength_param = (epsilon, "epsilon") if epsilon is not None else (value, param)
            variants.append({
                "name": name, "strength": strength, "strength_param": strength_param,
                "train": {"label_defense": defense.label, "gradient_defense": defense.gradient,
                          "epsilon": epsilon, "delta": defense.delta, "defense_params": params},
            })
    return variants


def _train_config(values: dict[str, Any], where: str) -> TrainConfig:
    try:
        return TrainConfig(**values)
    except ValidationError as exc:
        raise UserError(f"{where}: {_one_line(exc)}") from None


def _auc_cells(study: AucStudy, where: str) -> list[Cell]:
    checker = NameChecker(where)
    for s_index, source in enumerate(study.sources):
        if source.missing:
            continue
        if source.synthetic is not None:
            checker.synthetic(source.synthetic, f"auc.sources.{s_index}.synthetic")
        else:
            task = checker.dataset(source, f"auc.sources.{s_index}")
            check(task in (None, "binary"), f"{where}: auc.sources.{s_index}: dataset {source.label!r} is a "
                                            f"{task} dataset; AUC needs a binary one")
    cells = []
    for m_index, method in enumerate(study.methods):
        needs_epsilon = checker.auc_method(method.name, f"auc.methods.{m_index}")
        for epsilon in study.epsilons if needs_epsilon else [None]:
            for clients in study.clients:
                for buckets in study.buckets or [None]:
                    checker.auc_settings(method, epsilon, buckets, study, f"auc.methods.{m_index}")
                    checker.auc_layout(method, clients, f"auc.methods.{m_index}")
                    secure = ({"secure_aggregation": True, "min_clients": method.min_clients}
                              if method.secure_aggregation else {})
                    for source in (s for s in study.sources if not s.missing):
                        for seed in study.seeds:
                            config = {
                                "format": AUC_CELL_FORMAT, "kind": "auc",
                                "source": source.model_dump(mode="json", exclude_none=True),
                                "method": method.name, "epsilon": epsilon, "delta": method.delta,
                                "clients": clients, "buckets": buckets, "thresholds": study.thresholds,
                                "split": study.split, "repeats": study.repeats, "seed": seed, **secure,
                            }
                            cells.append(Cell("auc", config, {"dataset": source.label, "task": "binary"}))
    return cells


class NameChecker:
    """Checks names against the registries and parameters against each plugin's schema (`fedsim.params`),
    so a grid fails on its first mistake before any work; only `UserError` is caught (a bug stays a bug)."""

    def __init__(self, where: str) -> None:
        self.where = where
        self._checked: set[str] = set()

    def fail(self, loc: str, message: str) -> None:
        raise UserError(f"{self.where}: {loc}: {message}")

    def dataset(self, source: Source, loc: str) -> str | None:
        """The dataset's task (None for a user file: inferred when it is read)."""
        if source.name is None:
            return None
        try:
            spec = DATASETS.get(source.name)
        except UserError as exc:
            self.fail(loc, str(exc))
        if source.rows is not None and not spec.synthetic:
            self.fail(loc, f"rows applies to synthetic datasets only; {source.name!r} has a fixed size")
        if not spec.available:
            self.fail(loc, f"dataset {source.name!r} needs the optional extra: pip install 'fedsim[data]'")
        return spec.task

    def attack(self, entry: AttackEntry, task: str | None, loc: str) -> None:
        """Name, task and parameters (through the attack's parameter schema)."""
        try:
            cls = ATTACKS.get(entry.name)
        except UserError as exc:
            self.fail(f"{loc}.name", str(exc))
        if task is not None and task not in cls.tasks:
            usable = [n for n in ATTACKS.names() if task in ATTACKS.get(n).tasks]
            self.fail(f"{loc}.name", f"attack {entry.name!r} does not apply to {task} tasks (it supports "
                                     f"{', '.join(cls.tasks)}); {task} attacks: {', '.join(usable)}")
        try:
            validate_params(cls.Params, entry.params, f"attack {entry.name!r}")
        except UserError as exc:
            self.fail(f"{loc}.params", str(exc))

    def defenses(self, config: TrainConfig, task: str | None, loc: str) -> None:
        """Builds the defences once per distinct setting (names, tasks, parameters through each defence's
        schema, and the checks that need epsilon and the task), so they fail before any work."""
        marker = json.dumps([config.label_defense, config.gradient_defense, config.epsilon, config.delta,
                             config.defense_params, task], sort_keys=True, default=str)
        if (config.label_defense is None and config.gradient_defense is None) or marker in self._checked:
            return
        self._checked.add(marker)
        for kind, name, registry in (("label", config.label_defense, LABEL_DEFENSES),
                                     ("gradient", config.gradient_defense, GRADIENT_DEFENSES)):
            if name is None:
                continue
            try:
                cls = registry.get(name)
            except UserError as exc:
                self.fail(f"{loc}.{kind}", str(exc))
            if task is not None and task not in cls.tasks:
                self.fail(f"{loc}.{kind}", f"{kind} defence {name!r} does not apply to {task} tasks "
                                           f"(it supports {', '.join(cls.tasks)})")
        if task is None:
            return
        try:
            resolve_defenses(config, task)
        except UserError as exc:
            self.fail(loc, str(exc))

    def synthetic(self, name: str, loc: str) -> None:
        try:
            SYNTHETIC.get(name)
        except UserError as exc:
            self.fail(loc, str(exc))

    def auc_method(self, method: str, loc: str) -> bool:
        """Checks the name; returns whether the method takes an epsilon (exact does not)."""
        try:
            return METHODS.get(method).needs_epsilon
        except UserError:
            self.fail(f"{loc}.name", f"unknown AUC method {method!r}; valid: {', '.join(METHODS.names())}")

    def auc_settings(self, method: AucMethodEntry, epsilon: float | None, buckets: int | None, study: AucStudy,
                     loc: str) -> None:
        """The method's settings (delta, buckets, thresholds) through its parameter schema, up front."""
        try:
            make_settings(method.name, epsilon, method.delta, buckets, thresholds=study.thresholds)
        except UserError as exc:
            self.fail(loc, str(exc).replace("--", ""))

    def auc_layout(self, method: AucMethodEntry, clients: int, loc: str) -> None:
        """Clients against the method (one label holder) and secure aggregation's own checks (method,
        clients >= 2, min_clients <= clients), up front."""
        try:
            check_layout(METHODS.get(method.name), clients)
        except UserError as exc:
            self.fail(loc, str(exc).replace("--", ""))
        if not method.secure_aggregation:
            if method.min_clients is not None:
                self.fail(f"{loc}.min_clients", "min_clients applies with secure_aggregation = true only")
            return
        try:
            check_secure(method.name, clients, method.min_clients)
        except UserError as exc:
            self.fail(loc, f"with {clients} client{'s' * (clients > 1)}: " + str(exc).replace("--", ""))
