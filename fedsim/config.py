"""Validated settings (pydantic), each declared once: the CLI, the Flower app, the sweeps and the docs read them.

A setting is a model field built with `declare(default, help, ...)`: its type, default and bounds are the
field's, its help text is the field's description, and `json_schema_extra` carries the rest (see
docs/architecture.md, "One declaration per setting"):

- `flag`: the CLI flag (default `--field-name`; None: not a CLI option),
- `flower`: the Flower run-config key (default `field-name`; None: not a run-config key),
- `hash`: `"omit_at_default"` leaves the field out of a grid cell's JSON while it holds its default, so a
  field added later keeps the hashes (and the resumed cells) of every earlier grid (`hash_json`),
- `sets`: further fields that take the same value (`--hidden` sets both MLP widths),
- `cli`: extra `typer.Option` arguments (`min`, `show_default`), `cli_type`: "path" for a str taken as a PATH.

A field whose type is a model (`TrainConfig.model`) is flattened: its settings are the parent's.
`settings(schema)` lists them; `config_from_options` / `config_from_run_config` build a config from CLI
option values / a Flower run config; fedsim/cli/options.py turns them into typer options.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Final, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from fedsim.errors import UserError
from fedsim.params import parse_params
from fedsim.registry import GRADIENT_DEFENSES, LABEL_DEFENSES

OMIT_AT_DEFAULT: Final = "omit_at_default"
M = TypeVar("M", bound=BaseModel)


def declare(default: Any = PydanticUndefined, help: str = "", *, flag: str | None = "", flower: str | None = "",
            hash: Literal["omit_at_default"] | None = None, sets: tuple[str, ...] = (),
            cli: Mapping[str, Any] | None = None, cli_type: Literal["path"] | None = None, **field: Any) -> Any:
    """A pydantic `Field` carrying everything the CLI, the Flower app, the docs and the cell hashes need.

    `flag=""` / `flower=""` mean "derived from the field name"; None means "not offered there"."""
    given: dict[str, Any] = {"hash": hash, "sets": list(sets), "cli": dict(cli or {}), "cli_type": cli_type}
    extra: dict[str, Any] = {k: v for k, v in given.items() if v}
    extra.update({k: v for k, v in (("flag", flag), ("flower", flower)) if v != ""})
    return Field(default, description=help, json_schema_extra=extra or None, **field)


@dataclass(frozen=True)
class Setting:
    """One leaf setting of a config model (nested models flattened), with its CLI flag and Flower key."""

    path: tuple[str, ...]  # field names from the top model down, e.g. ("model", "bottom_hidden")
    info: FieldInfo
    flag: str | None
    flower: str | None
    sets: tuple[tuple[str, ...], ...]  # further paths that take the same value

    @property
    def name(self) -> str:
        """The Python name of the CLI parameter: the flag's, else the field's."""
        return self.flag[2:].replace("-", "_") if self.flag else self.path[-1]

    @property
    def extra(self) -> dict[str, Any]:
        return _extra(self.info)

    @property
    def default(self) -> Any:
        return None if self.info.is_required() else self.info.get_default(call_default_factory=True)

    @property
    def is_params(self) -> bool:
        """A dict of KEY=VALUE parameters (`--defense-param`, repeatable; Flower: "k=v k=v")."""
        return _is_dict(self.info.annotation)


def _extra(info: FieldInfo) -> dict[str, Any]:
    return info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}


def _is_dict(annotation: Any) -> bool:
    return getattr(annotation, "__origin__", annotation) is dict


def _model_type(annotation: Any) -> type[BaseModel] | None:
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None


def settings(schema: type[BaseModel], prefix: tuple[str, ...] = ()) -> Iterator[Setting]:
    """Every leaf setting of `schema`, in declaration order (a nested model's where the model field is)."""
    for name, info in schema.model_fields.items():
        nested = _model_type(info.annotation)
        if nested is not None:
            yield from settings(nested, (*prefix, name))
            continue
        extra = _extra(info)
        kebab = name.replace("_", "-")
        flag = extra.get("flag", f"--{kebab}")
        flower = extra.get("flower", kebab)
        yield Setting((*prefix, name), info, flag, flower, tuple((*prefix, s) for s in extra.get("sets", ())))


def config_from_options(schema: type[M], options: Mapping[str, Any]) -> M:
    """`schema` from CLI option values keyed by `Setting.name` (settings not given keep their defaults)."""
    values = []
    for s in settings(schema):
        if s.flag is None or s.name not in options:
            continue
        value = options[s.name]
        if s.is_params:
            value = parse_params(value, s.flag)
        elif value is not None and s.extra.get("cli_type") == "path":
            value = str(value)
        values.append((s, value))
    return _build(schema, values, {})


def config_from_run_config(schema: type[M], run_config: Mapping[str, Any], **fixed: Any) -> M:
    """`schema` from a Flower run config ("" means unset; KEY=VALUE parameters separated by spaces). A key
    that names no setting goes to the model as is, which rejects it in one line."""
    keys = {s.flower: s for s in settings(schema) if s.flower is not None}
    values, unknown = [], {}
    for key, value in run_config.items():
        if value == "":
            continue
        if key not in keys:
            unknown[key.replace("-", "_")] = value
            continue
        s = keys[key]
        values.append((s, parse_params(str(value).split(), key) if s.is_params else value))
    return _build(schema, values, {**unknown, **fixed})


def _build(schema: type[M], values: list[tuple[Setting, Any]], top: dict[str, Any]) -> M:
    """Validate nested models first (their errors name their own fields), then `schema`."""
    nested: dict[str, dict[str, Any]] = {}
    for s, value in values:
        for path in (s.path, *s.sets):
            if len(path) == 1:
                top[path[0]] = value
            else:
                nested.setdefault(path[0], {})[path[1]] = value
    for name, fields in nested.items():
        top[name] = validated(schema.model_fields[name].annotation, **fields)  # type: ignore[arg-type]
    return validated(schema, **top)


def hash_json(config: BaseModel) -> dict[str, Any]:
    """`config` as JSON without the fields flagged `omit_at_default` that hold their default: a grid cell's
    hash is taken over this, so adding such a field leaves every earlier cell's hash (and its reuse) intact."""
    dump = config.model_dump(mode="json")
    for name, info in type(config).model_fields.items():
        value = getattr(config, name)
        if isinstance(value, BaseModel):
            dump[name] = hash_json(value)
        elif _extra(info).get("hash") == OMIT_AT_DEFAULT and value == info.get_default(call_default_factory=True):
            del dump[name]
    return dump


class ModelConfig(BaseModel):
    """Architecture of the bottom MLPs (one per feature party) and the top model."""

    model_config = ConfigDict(extra="forbid")

    embedding_dim: int = declare(16, "Width of each party's embedding (with --top-model sum: the label party's "
                                     "output count, filled in when left out, the only width allowed).", ge=1)
    bottom_hidden: int = declare(64, "Width of the bottom and top MLPs.", flag="--hidden", flower="hidden",
                                 sets=("top_hidden",), ge=1)
    bottom_depth: int = declare(1, "Hidden layers of each bottom MLP.", flag=None, ge=0)
    top_hidden: int = declare(64, "Width of the top MLP (set with the bottom width by --hidden / hidden).",
                              flag=None, flower=None, ge=1)
    top_depth: int = declare(1, "Hidden layers of the top MLP.", flag=None, ge=0)
    top_model: Literal["mlp", "linear", "sum"] = declare(
        "mlp", "Top model of the label party: mlp | linear | sum (aggregation VFL: each party outputs the logits, "
               "the label party adds them; nothing trainable).")


class TrainConfig(BaseModel):
    """Everything that determines a training run; same config + same seed => same transcript.

    The field order is the order of `fedsim train --help`."""

    model_config = ConfigDict(extra="forbid")

    dataset: str | None = declare("diabetes", "Built-in dataset: {datasets} (default diabetes; `fedsim datasets` "
                                              "lists sizes).", cli={"show_default": False})
    data: str | None = declare(None, "A CSV or Parquet file with the feature columns and the target (instead of "
                                     "--dataset).", cli_type="path")
    target: str | None = declare(None, "Target (label) column of --data; required with --data.")
    id_column: str | None = declare(None, "Sample-id column of --data. Default: a column named 'id' if there is "
                                          "one, else row numbers; a column that looks like a row id (unique "
                                          "integers 0..n-1 or 1..n) must be named here, or 'none' keeps it as a "
                                          "feature.")
    rows: int | None = declare(None, "Rows to generate (synthetic datasets only).", ge=2)
    task: Literal["regression", "binary", "multiclass"] | None = declare(
        None, "regression | binary | multiclass (default: binary if the target has two values, multiclass if it "
              "has more and they are not numbers, else regression).")
    parties: int = declare(2, "Number of feature parties K.", ge=1)
    label_party_features: int = declare(
        0, "The label party keeps N feature columns (the last N; with --partition random, N at random) for its own "
           "bottom model, whose embeddings never leave it; the feature parties split the rest. Default 0: it "
           "holds only the labels.", hash=OMIT_AT_DEFAULT, cli={"min": 0}, ge=0)
    partition: Literal["contiguous", "random"] = declare(
        "contiguous", "How feature columns are split over the parties: contiguous | random (seeded).")
    test_fraction: float = declare(0.2, "Share of the rows held out for the test metrics.", flag=None, gt=0, lt=1)
    impute: Literal["mean", "median", "drop"] | None = declare(
        None, "What a missing or infinite feature value becomes: mean | median (of its column's training values; "
              "a missing category is its own category) | drop (its row). Default: none is accepted (an error "
              "names the columns). Any imputed are counted in a warning and in the result.", hash=OMIT_AT_DEFAULT)
    runtime: Literal["local", "flower"] = declare(
        "local", "local (in-process) | flower (Flower simulation on Ray).", flower=None)  # `flwr run` is flower
    epochs: int = declare(20, "Training epochs.", ge=1)
    batch_size: int = declare(64, "Samples per step.", ge=1)
    lr: float = declare(1e-3, "Learning rate (Adam) of every party.")
    optimizer: Literal["adam", "sgd"] = declare("adam", "Optimizer of every party: adam | sgd.", flag=None)
    model: ModelConfig = Field(default_factory=ModelConfig)
    seed: int = declare(0, "Seed of the split, the initialisation, the batches and the defences.")
    local_steps: int = declare(1, "FedBCD: updates per exchange; every party reuses what it last received for Q-1 "
                                  "more updates of the same batch (Q times fewer round trips).", ge=1)
    label_defense: str | None = declare(None, "Label-DP mechanism applied once to the labels: {label_defenses} "
                                              "(`fedsim defenses` shows their parameters).")
    gradient_defense: str | None = declare(None, "Defence applied to every cut gradient: {gradient_defenses}.")
    epsilon: float | None = declare(None, "Privacy budget of the defence (needs --label-defense or "
                                          "--gradient-defense).")
    delta: float | None = declare(None, "delta of the defence or of top-model DP-SGD (0 < delta < 1).")
    defense_params: dict[str, float | int | str | bool] = declare(
        help="A defence parameter KEY=VALUE, repeatable (e.g. --defense-param low=0 --defense-param high=400; "
             "top_dp_epsilon=EPS adds DP-SGD on the top model).", flag="--defense-param", default_factory=dict)
    record_last_epochs: int | None = declare(None, "Keep only the last E epochs in the transcript.", ge=1)
    # an actively malicious feature party (Fu et al.): its own step-size multiplier, recorded with the run
    malicious_update_scale: float = declare(
        1.0, "Feature party --malicious-party multiplies every step of its bottom model by this (Fu et al.'s "
             "active attack).", hash=OMIT_AT_DEFAULT, gt=0)
    malicious_party: int = declare(0, "Which feature party scales its steps.", hash=OMIT_AT_DEFAULT, ge=0)

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
        """--epsilon/--delta that no chosen mechanism uses would be silently ignored and the run would look
        private (or two grid cells labelled with different epsilons would be the same run). Each defence
        says whether it takes them (`takes_epsilon` / `takes_delta`); top-model DP-SGD takes delta."""
        defences = _chosen_defences(self.label_defense, self.gradient_defense)
        if defences is None:  # an unknown name: `resolve_defenses` (or the grid's check) names it and the valid ones
            return self
        if self.epsilon is not None:
            _check_budget("epsilon", defences, "takes_epsilon", False)
        if self.delta is not None:
            _check_budget("delta", defences, "takes_delta", "top_dp_epsilon" in self.defense_params)
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


class EvalConfig(BaseModel):
    """Everything `fedsim auc` takes: the scores, the AUC method and its release settings. The method's own
    parameter schema and `run_auc` check the values (their one-line errors stay as they were)."""

    model_config = ConfigDict(extra="forbid")

    data: Path | None = declare(None, "CSV or Parquet file with a score column and a 0/1 label column.")
    score_col: str = declare("score", "Score column of --data.")
    label_col: str = declare("label", "0/1 label column of --data (multiclass score files: the class names).")
    class_scores: str | None = declare(None, "Multiclass: every column named PREFIX + class name holds that "
                                             "class's score; the estimate is the one-vs-rest macro AUC (methods "
                                             "exact, hist, hist_gauss; epsilon covers all classes).")
    synthetic: str | None = declare(None, "A seeded synthetic score set instead of --data: {synthetic_scores}.")
    method: str = declare(help="AUC method: {auc_methods}.")
    epsilon: float | None = declare(None, "Total label-DP epsilon (> 0; inf: no noise).")
    delta: float | None = declare(None, "delta of hist_gauss (default 1e-6).")
    buckets: int | None = declare(None, "Score buckets (>= 2); default: a rule in n, epsilon, clients.")
    bucketing: Literal["mass", "variance"] = declare(
        "mass", "How bucket edges follow the scores: mass (equal-size quantile buckets) | variance (equal "
                "s(1-s) weight, probability scores in [0, 1]: few pure buckets where scores sit near 0 or 1, "
                "resolution where they mix).")
    thresholds: int = declare(100, "DPAUC's number of thresholds K.")
    clients: int = declare(1, "Clients M, each adding its own noise (1: vertical / central).")
    secure_aggregation: bool = declare(False, "hist | hist_gauss with M >= 2: each client adds a share of one "
                                              "central noise, the server learns only the sum (SecAgg+ over Flower).")
    min_clients: int | None = declare(None, "With --secure-aggregation: size the shares for T of the M clients "
                                            "(dropout tolerance; default M). Fewer contributors: weaker, reported "
                                            "epsilon.")
    split: str = declare("iid", "How examples are spread over clients: iid | score_sorted.")
    runtime: str = declare("local", "local | flower (the same computation as a Flower app).")
    setting: str = declare("horizontal", "horizontal (M clients) | vertical (a score holder and a label holder).")
    threshold: float | None = declare(None, "Also report accuracy, precision, recall, F1 at score >= T.")
    repeats: int = declare(1, "R > 1: evaluate bias, std, RMSE and CI coverage over R releases.")
    seed: int = declare(0, "Seed of the noise (and of --synthetic data).")
    curves: bool = declare(False, "Also post-process the same release (exact | hist | hist_gauss, no extra "
                                  "epsilon) into ROC and PR curves, AP, F1, calibration/ECE and Brier, with "
                                  "pointwise 95% bands.")
    projection: Literal["box", "isotonic"] = declare(
        "isotonic", "With --curves: make the noisy counts consistent by isotonic (monotone positive rates in "
                    "[0, 1], PAVA) | box (clip each count to [0, n_b]: no shape assumed, biased low at rare "
                    "positives).")
    plot: Path | None = declare(None, "With --curves: draw the ROC, PR and calibration curves with bands to FILE.png.")
    ledger: Path | None = declare(None, "Record this release in a JSON ledger of releases on these labels.")
    budget: float | None = declare(None, "With --ledger: refuse a release that takes the labels' total epsilon "
                                         "past this (basic composition).")


Confidence = Annotated[float, declare(help="Confidence of the lower bound, in (0, 1).")]


class AuditConfig(BaseModel):
    """The settings of `fedsim audit train` beyond the training run's (`audit_training` checks them)."""

    model_config = ConfigDict(extra="forbid")

    attack: str | None = declare(None, "Distinguisher: an attack that applies to the task, {attacks} (default: "
                                       "residual for regression, direction_scoring for binary).")
    attack_params: dict[str, float | int | str | bool] = declare(
        help="An attack parameter KEY=VALUE, repeatable.", flag="--attack-param", default_factory=dict)
    canaries: int | None = declare(None, "Canaries M (default min(1000, half the training rows)).")
    confidence: Confidence = 0.95
    canary_values: tuple[float, float] | None = declare(
        None, "The two public labels a regression canary can take (default: the defence's public clip range).")
    auditor: str = declare("black-box", "Who distinguishes: black-box (the feature party's attack, what a real "
                                        "party achieves) or white-box (reads the label party's recorded state: "
                                        "likelihood ratio of each canary's labels).")
    canary_classes: int = declare(2, "Public classes a canary can take: 2, or k > 2 on a multiclass task "
                                     "(classes 0..k-1).")


class AucAuditConfig(BaseModel):
    """The settings of `fedsim audit auc` beyond the release's (`audit_auc` checks them)."""

    model_config = ConfigDict(extra="forbid")

    canaries: int = declare(1000, "Canaries M: extra scored examples with secret labels.")
    confidence: Confidence = 0.95


def _defence_flags(attribute: str) -> str:
    """The defences whose `attribute` (`takes_epsilon` / `takes_delta`) holds, as the flags that choose them."""
    label, gradient = ("|".join(n for n in registry.names() if getattr(registry.get(n), attribute, False))
                       for registry in (LABEL_DEFENSES, GRADIENT_DEFENSES))
    return " or ".join(f"{flag} {names}" for flag, names in (("--label-defense", label), ("--gradient-defense",
                                                                                          gradient)) if names)


def _chosen_defences(label: str | None, gradient: str | None) -> list[Any] | None:
    """The defence classes named; None if a name is unknown."""
    chosen = [(registry, name) for registry, name in ((LABEL_DEFENSES, label), (GRADIENT_DEFENSES, gradient))
              if name is not None]
    if any(name not in registry for registry, name in chosen):
        return None
    return [registry.get(name) for registry, name in chosen]


def _check_budget(what: str, defences: list[Any], attribute: str, top_dp: bool) -> None:
    """--epsilon / --delta must reach a mechanism that uses it: a chosen defence that takes it, or (delta)
    top-model DP-SGD; otherwise one line naming the defences that do."""
    if top_dp or any(getattr(cls, attribute, False) for cls in defences):
        return
    top = " or top-model DP-SGD (--defense-param top_dp_epsilon=EPS)" if what == "delta" else ""
    if defences:
        names = " and ".join(repr(cls.name) for cls in defences)
        raise ValueError(f"defence {names} takes no {what}: drop --{what} (it would be ignored), or use "
                         f"{_defence_flags(attribute)}{top}")
    raise ValueError(f"--{what} needs a defence that takes it{top}: add {_defence_flags(attribute)}")


def validated(schema: type[M], **values: Any) -> M:
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
        given = error.get("input")
        if type(given).__module__ == "numpy" and hasattr(given, "item"):  # 3, not np.int64(3)
            given = given.item()
        shown = "" if "got " in message else f" (got {given!r})"  # a rule's own message may name the value
        raise UserError(f"{where}: {message}{shown}") from None
