"""A grid's expansion into cells: one `Cell` per unit of work, keyed by the hash of its config.

A leakage cell is one training run (dataset, feature parties, runtime, defence at one strength, seed,
training settings) with every listed attack; an AUC cell is (score source, method, epsilon, clients,
buckets, seed) with its repeats. Names are checked (`names.NameChecker`) while expanding, so a grid fails
on its first bad name before any work.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from fedsim.config import TrainConfig, hash_json
from fedsim.errors import UserError, check
from fedsim.experiments.names import NameChecker
from fedsim.experiments.schema import AttackEntry, AucStudy, DefenseEntry, GridSpec, LeakageStudy, one_line
from fedsim.limits import check_memory

CELL_FORMAT = 1  # bump when the meaning of a cell's config changes: old results are then recomputed
AUC_CELL_FORMAT = 2  # AUC cells only; 2: estimates clipped to [0, 1], test-inversion intervals (issue 12)


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


# what one cell holds from expansion to the results table: its config, labels, finished record and table rows
CELL_BYTES = 16 << 10


def cell_bound(spec: GridSpec) -> int:
    """At most how many cells the grid expands to (the product of its axes), counted without building any."""
    count = 0
    for study in spec.leakage or []:
        variants = sum(len(d.epsilons or [None]) * len(d.sweep.values if d.sweep else [None]) for d in study.defenses)
        count += len(study.datasets) * len(study.parties) * len(study.runtimes) * variants * len(study.seeds)
    if spec.auc is not None:
        auc = spec.auc
        count += (len(auc.methods) * len(auc.epsilons) * len(auc.clients) * len(auc.buckets or [None])
                  * len(auc.sources) * len(auc.seeds))
    return count


def expand(spec: GridSpec, where: str = "grid") -> list[Cell]:
    """All cells of a grid, in a stable order, without duplicates; raises UserError on a bad name, and on a
    grid whose axes multiply to more cells than this machine's memory holds (before building one)."""
    bound = cell_bound(spec)
    check_memory("cells", bound, CELL_BYTES, "their configs and results", f"{where}: a grid of {bound} cells")
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
    """A cell's training config as JSON; fields added after CELL_FORMAT 1 are left out at their default (flagged
    on the field, `fedsim.config.hash_json`) so that existing grids keep their cell keys and a re-run resumes."""
    return hash_json(config)


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
        raise UserError(f"{where}: {one_line(exc)}") from None


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
                    if method.bucketing != "mass":  # only then in the cell: earlier cells keep their hashes
                        secure["bucketing"] = method.bucketing
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
