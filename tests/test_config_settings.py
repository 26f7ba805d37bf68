"""Each setting declared once (fedsim/config.py): the CLI options, the Flower run-config keys, docs/CLI.md's
tables and the grid cell hashes all follow the config models, and a new field reaches all of them."""

from __future__ import annotations

import tomllib
from pathlib import Path

import click
import pytest
import typer
from typer.testing import CliRunner

from fedsim.cli.app import load_command
from fedsim.cli.generated import flower_keys, stale
from fedsim.cli.options import config_command, option_table
from fedsim.config import (
    OMIT_AT_DEFAULT,
    AucAuditConfig,
    AuditConfig,
    EvalConfig,
    TrainConfig,
    config_from_run_config,
    declare,
    hash_json,
    settings,
)
from fedsim.errors import UserError
from fedsim.experiments.expansion import config_hash, train_dump
from fedsim.runtime.flower.server import RUNTIME_KEYS, settings_from_run_config

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = {("train",): [TrainConfig], ("auc",): [EvalConfig], ("audit", "train"): [AuditConfig, TrainConfig],
            ("audit", "auc"): [AucAuditConfig, EvalConfig]}
# settings a command leaves out on purpose: an audit writes no transcript and picks its own AUC buckets
LEFT_OUT = {("audit", "train"): {"--record-last-epochs"},
            ("audit", "auc"): {"--class-scores", "--runtime", "--setting", "--threshold", "--repeats", "--curves",
                               "--projection", "--plot", "--ledger", "--budget"}}
# settings deliberately not offered as a flag / a Flower key (declared so with flag=None / flower=None)
NO_FLAG = {"test_fraction", "optimizer", "model.bottom_depth", "model.top_hidden", "model.top_depth"}
NO_FLOWER_KEY = {"runtime", "model.top_hidden"}  # `flwr run` is the flower runtime; --hidden/hidden sets both

# Cell keys computed on the code BEFORE the settings were declared on the models (LATER_FIELDS era): a grid
# run before this change must resume with the same cells.
PINNED = [
    (TrainConfig(), "805264b37c245a66"),
    (TrainConfig(label_party_features=2, parties=3, malicious_party=1, malicious_update_scale=2.0),
     "59e496378f0381f5"),
    (TrainConfig(dataset="breast_cancer", label_defense="rr", epsilon=1.0, defense_params={"low": 0},
                 record_last_epochs=2), "a4e0ca4fff4b8081"),
]


def leakage_key(config: TrainConfig) -> str:
    return config_hash({"format": 1, "kind": "leakage", "train": train_dump(config)})


def dotted(setting) -> str:
    return ".".join(setting.path)


@pytest.mark.parametrize(("config", "key"), PINNED, ids=["defaults", "later-fields-set", "defence"])
def test_cell_hashes_are_those_from_before(config, key):
    assert leakage_key(config) == key


def command_flags(path: tuple[str, ...]) -> set[str]:
    command = load_command(path[0])
    for name in path[1:]:
        command = command.commands[name]  # type: ignore[attr-defined]
    return {flag for p in command.params if isinstance(p, click.Option) for flag in p.opts}


@pytest.mark.parametrize("path", list(COMMANDS), ids=" ".join)
def test_every_setting_with_a_flag_is_an_option_of_its_commands(path):
    declared = {s.flag for schema in COMMANDS[path] for s in settings(schema) if s.flag is not None}
    assert declared - LEFT_OUT.get(path, set()) <= command_flags(path)
    assert not LEFT_OUT.get(path, set()) & command_flags(path)


def test_settings_without_a_flag_or_a_flower_key_are_the_declared_exceptions():
    assert {dotted(s) for s in settings(TrainConfig) if s.flag is None} == NO_FLAG
    assert {dotted(s) for s in settings(TrainConfig) if s.flower is None} == NO_FLOWER_KEY


def test_generated_keys_and_tables_are_current():
    """pyproject's Flower keys and docs/CLI.md's tables are regenerated from the config models."""
    assert not stale(), "run `python -m fedsim.cli.generated` to regenerate " + ", ".join(map(str, stale()))


def test_pyproject_run_config_sets_the_defaults_and_only_known_keys():
    table = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["flwr"]["app"]["config"]
    keys = {s.flower for s in settings(TrainConfig) if s.flower is not None}
    assert set(table) - keys - RUNTIME_KEYS == set(), "[tool.flwr.app.config] keys that set nothing"
    config, _ = settings_from_run_config(table)
    assert config == TrainConfig(runtime="flower", epochs=table["epochs"])  # every other value is the default


def test_flower_keys_set_every_setting():
    values = {"rows": 300, "id-column": "none", "label-party-features": 1, "malicious-party": 1,
              "malicious-update-scale": 3.0, "parties": 2, "test-fraction": 0.3, "bottom-depth": 2, "hidden": 8,
              "top-depth": 0, "optimizer": "sgd", "defense-params": "low=0 high=30"}
    config = config_from_run_config(TrainConfig, values)
    assert (config.rows, config.id_column, config.label_party_features, config.malicious_party,
            config.malicious_update_scale, config.test_fraction, config.optimizer) == (300, "none", 1, 1, 3.0, 0.3,
                                                                                        "sgd")
    assert (config.model.bottom_depth, config.model.bottom_hidden, config.model.top_hidden,
            config.model.top_depth) == (2, 8, 8, 0)
    assert config.defense_params == {"low": 0, "high": 30}
    with pytest.raises(UserError, match="^no-such-key: Extra inputs are not permitted"):
        config_from_run_config(TrainConfig, {"no-such-key": 1})
    with pytest.raises(UserError, match="^bottom-depth: "):
        config_from_run_config(TrainConfig, {"bottom-depth": -1})


def test_cli_options_build_the_same_config_as_python():
    seen = []
    probe = typer.Typer()
    probe.command()(config_command(TrainConfig)(lambda config: seen.append(config)))
    runner = CliRunner()
    assert runner.invoke(probe, []).exit_code == 0
    assert seen.pop() == TrainConfig()
    args = ["--data", "x.csv", "--target", "y", "--hidden", "8", "--defense-param", "low=0", "--malicious-party",
            "1", "--parties", "3"]
    assert runner.invoke(probe, args).exit_code == 0
    assert seen.pop() == TrainConfig(data="x.csv", target="y", model={"bottom_hidden": 8, "top_hidden": 8},
                                     defense_params={"low": 0}, malicious_party=1, parties=3)


class WithWarmup(TrainConfig):
    """A training setting added the declared way: one field, nothing else."""

    warmup_epochs: int = declare(0, "Epochs before the defence starts.", hash=OMIT_AT_DEFAULT, ge=0)


def test_a_new_field_gets_a_flag_a_flower_key_a_doc_row_and_keeps_the_hashes():
    seen = []
    probe = typer.Typer()
    probe.command()(config_command(WithWarmup)(lambda config: seen.append(config)))
    runner = CliRunner()
    assert "--warmup-epochs" in runner.invoke(probe, ["--help"]).output
    assert runner.invoke(probe, ["--warmup-epochs", "3"]).exit_code == 0
    assert seen.pop().warmup_epochs == 3
    assert config_from_run_config(WithWarmup, {"warmup-epochs": 2}).warmup_epochs == 2
    assert "| `--warmup-epochs` | `warmup_epochs` | `warmup-epochs` | `0` |" in option_table(WithWarmup, True)
    assert flower_keys(WithWarmup).endswith("\nwarmup-epochs = 0")
    assert hash_json(WithWarmup()) == hash_json(TrainConfig())  # at its default the cell keys do not move
    assert hash_json(WithWarmup(warmup_epochs=2))["warmup_epochs"] == 2
