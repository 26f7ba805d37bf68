"""Name checks: a grid's datasets, attacks, defences and AUC methods against the registries, and their
parameters against each plugin's schema, before any work."""

from __future__ import annotations

import json

from fedsim.assembly import resolve_defenses
from fedsim.config import TrainConfig
from fedsim.data import DATASETS
from fedsim.errors import UserError
from fedsim.evaluation import METHODS, SYNTHETIC
from fedsim.evaluation.driver import make_settings
from fedsim.evaluation.methods import check_layout
from fedsim.evaluation.secure_aggregation import check_secure
from fedsim.experiments.schema import AttackEntry, AucMethodEntry, AucStudy, Source
from fedsim.params import validate_params
from fedsim.registry import ATTACKS, GRADIENT_DEFENSES, LABEL_DEFENSES


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
            make_settings(method.name, epsilon, method.delta, buckets, thresholds=study.thresholds,
                          bucketing=method.bucketing)
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
