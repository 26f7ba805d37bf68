"""Building a run's pieces from its config: the dataset, the label party's hooks, both kinds of party.

Every `build_*` function is deterministic in the config's seed, so any runtime (local or Flower) that
builds its parties with them trains bit-identically.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from fedsim.config import TrainConfig
from fedsim.data import VerticalDataset, load_table, read_table, vertical_from_table
from fedsim.errors import UserError, check
from fedsim.models import TopModel, build_bottom_model, build_top_net, seeded_init, torch_seed
from fedsim.parties import (
    FeatureParty,
    FeaturePartySetup,
    LabelParty,
    build_feature_party_from_block,
    make_optimizer,
)
from fedsim.privacy.dp_sgd import TOP_PARAMS, TopModelDP
from fedsim.protocol import GradientTransform, LabelTransform, TrainingPlan
from fedsim.registry import GRADIENT_DEFENSES, LABEL_DEFENSES
from fedsim.run_result import loss_name
from fedsim.rundir import PublicRunFacts
from fedsim.schedule import Schedule
from fedsim.streams import Stream, secret_key
from fedsim.transcript import Recorder


def load_dataset(config: TrainConfig) -> VerticalDataset:
    """The vertical dataset of a run (same config => same split, partition and encoding)."""
    rng = np.random.default_rng([config.seed, Stream.DATASET])
    task = config.task
    if config.data is not None:
        features, target = read_table(config.data, config.target, config.id_column)
        name = Path(config.data).name
    else:  # a built-in table's own task unless --task says otherwise (integer classes need it to be multiclass)
        features, target, builtin_task = load_table(config.dataset, rng, config.rows)
        name, task = config.dataset, task or builtin_task
    return vertical_from_table(name, features, target, task, config.parties, config.seed, config.partition,
                               config.test_fraction, release_source=True,
                               label_party_features=config.label_party_features, impute=config.impute)


def resolve_model(config: TrainConfig, dataset: VerticalDataset) -> TrainConfig:
    """The config with `--top-model sum`'s embedding width filled in: in aggregation VFL every party's bottom model
    outputs what the label party's loss takes (K logits for multiclass, one per target column otherwise), so the
    width follows from the data; a different width given explicitly is an error."""
    if config.model.top_model != "sum":
        return config
    outputs = dataset.n_classes if dataset.task == "multiclass" else np.asarray(dataset.y_train).reshape(
        dataset.n_train, -1).shape[1]
    if config.model.embedding_dim == outputs:
        return config
    check("embedding_dim" not in config.model.model_fields_set,
          f"--top-model sum: each party outputs the label party's {outputs} output(s) ({dataset.task}), so "
          f"--embedding-dim must be {outputs} or left out (got {config.model.embedding_dim})")
    return config.model_copy(update={"model": config.model.model_copy(update={"embedding_dim": outputs})})


def resolve_defenses(config: TrainConfig, task: str) -> tuple[LabelTransform, GradientTransform]:
    """The label party's two hooks, looked up by name in the defence registries; names and parameters are
    validated here.

    Each `--defense-param` goes to the defence(s) that accept it (`top_dp_*` to top-model DP-SGD); a
    parameter nobody accepts is an error naming the valid ones. A label defence named as a gradient defence
    (or the reverse) is refused with the flag it needs.
    """
    if config.label_defense is None and config.gradient_defense is None and not config.defense_params:
        return LabelTransform(), GradientTransform()
    for name, flag, other, other_flag in ((config.gradient_defense, "--gradient-defense", LABEL_DEFENSES,
                                           "--label-defense"),
                                          (config.label_defense, "--label-defense", GRADIENT_DEFENSES,
                                           "--gradient-defense")):
        check(name is None or name not in other,
              f"{flag} {name}: {name} is a {other.kind}; use {other_flag} {name}")
    label_cls = LABEL_DEFENSES.get(config.label_defense) if config.label_defense is not None else None
    gradient_cls = GRADIENT_DEFENSES.get(config.gradient_defense) if config.gradient_defense is not None else None
    params = dict(config.defense_params)
    accepted = set(TOP_PARAMS)
    for cls in (label_cls, gradient_cls):
        accepted |= set(cls.params) if cls is not None else set()
    unknown = sorted(set(params) - accepted)
    if unknown:
        owners = ", ".join(c.name for c in (label_cls, gradient_cls) if c is not None) or "no defence"
        valid = ", ".join(sorted(accepted))
        raise UserError(f"unknown --defense-param {unknown[0]!r} for {owners}; valid: {valid}")

    def make(cls):
        return cls.from_config(task, config.epsilon, config.delta, {k: params[k] for k in cls.params if k in params})

    label: LabelTransform = make(label_cls) if label_cls is not None else LabelTransform()
    gradient: GradientTransform = make(gradient_cls) if gradient_cls is not None else GradientTransform()
    return label, gradient


def resolve_top_model_dp(config: TrainConfig) -> TopModelDP | None:
    """Opacus DP-SGD on the top model when `--defense-param top_dp_epsilon=EPS` is given, else None."""
    top = {k: v for k, v in config.defense_params.items() if k in TOP_PARAMS}
    if not top:
        return None
    check("top_dp_epsilon" in top, "top-model DP-SGD needs --defense-param top_dp_epsilon=EPS")
    return TopModelDP.from_config(config.delta, top)


def make_plan(config: TrainConfig, dataset: VerticalDataset) -> TrainingPlan:
    schedule = make_schedule(config, dataset)
    return TrainingPlan(dataset.task, dataset.n_train, config.batch_size, config.epochs, schedule.steps_per_epoch,
                        dataset.parties, tuple([config.model.embedding_dim] * dataset.parties), dataset.n_classes)


def make_schedule(config: TrainConfig, dataset: VerticalDataset) -> Schedule:
    return Schedule(dataset.n_train, config.batch_size, config.epochs, config.seed)


def build_feature_party(
    config: TrainConfig, dataset: VerticalDataset, index: int, recorder: Recorder | None = None
) -> FeatureParty:
    return build_feature_party_from_block(feature_setup(config, dataset, index), dataset.blocks[index].train,
                                          dataset.train_ids, recorder)


def feature_setup(config: TrainConfig, dataset: VerticalDataset, index: int) -> FeaturePartySetup:
    """What feature party `index` is told (the label party derives it; `FeaturePartySetup` says why)."""
    return FeaturePartySetup(
        index=index, public=PublicRunFacts.of(config, dataset.task, loss_name(dataset.task), dataset.n_classes),
        init_seed=torch_seed([config.seed, Stream.BOTTOM_INIT, index]), optimizer=config.optimizer, lr=config.lr,
        record_last_epochs=config.record_last_epochs, impute=config.impute)


def build_label_party(
    config: TrainConfig, dataset: VerticalDataset, label_transform: LabelTransform,
    gradient_transform: GradientTransform,
) -> LabelParty:
    """Privatise the labels once (label defence), then build the top model on the released targets only.

    Two hooks of the gradient defence (no-ops by default, see `GradientTransform`): `target_normalization`
    replaces the top model's offset/scale (which otherwise come from the targets in the clear), and
    `privatize_top_model` returns a DP optimizer. Top-model DP-SGD to a target epsilon (`top_dp_epsilon`,
    see fedsim.privacy.dp_sgd) does the latter on its own and is kept on the party, so every runtime
    reports it.
    """
    top_model_dp = resolve_top_model_dp(config)
    key = secret_key(config.seed, dataset.y_train)
    rng = label_rng(key, Stream.LABEL_MECHANISM)
    targets = np.asarray(label_transform.apply(dataset.y_train, dataset.task, rng), dtype=np.float64)
    targets = targets.reshape(len(targets), -1)
    if dataset.task == "regression":
        offset, scale = targets.mean(axis=0), targets.std(axis=0)
        scale = np.where(scale > 0, scale, 1.0)
    else:  # classification: logits, no normalisation; multiclass has one logit per class
        outputs = dataset.n_classes if dataset.task == "multiclass" else targets.shape[1]
        offset, scale = np.zeros(outputs), np.ones(outputs)
    normalization = gradient_transform.target_normalization(targets, label_rng(key, Stream.TARGET_NORMALIZATION))
    if normalization is not None:
        offset, scale = normalization
    own = build_own_party(config, dataset, key)
    in_dim = config.model.embedding_dim * (dataset.parties + (own is not None))
    check(config.model.top_model != "sum" or config.model.embedding_dim == len(offset),
          f"--top-model sum: the parties' outputs are {config.model.embedding_dim} wide but the label party's "
          f"loss takes {len(offset)}; set --embedding-dim {len(offset)}")
    model = seeded_init(
        [key, Stream.TOP_INIT],
        lambda: TopModel(build_top_net(in_dim, len(offset), config.model), torch.tensor(offset),
                         torch.tensor(scale)),
    )
    plan = make_plan(config, dataset)
    pending = label_transform.pending(plan)  # a two-stage label defence's rows released during training
    model = gradient_transform.wrap_top_model(model, in_dim, plan, label_rng(key, Stream.TOP_WRAP))
    gradient_transform.prepare(plan, label_rng(key, Stream.GRADIENT_PREPARE))
    if not any(p.requires_grad for p in model.parameters()):  # --top-model sum with no defence layers: no update
        check(top_model_dp is None, "top_dp_epsilon needs a trainable top model; --top-model sum has none")
        return LabelParty(targets, dataset.task, model, None, gradient_transform, label_transform.prediction_column,
                          None, own, config.local_steps, pending)
    optimizer = make_optimizer(config.optimizer, model.parameters(), config.lr)
    private = gradient_transform.privatize_top_model(model, optimizer, plan, label_rng(key, Stream.TOP_DP))
    if private is not None:
        check(top_model_dp is None, f"top_dp_epsilon cannot be combined with {gradient_transform.name}, which "
                                    "already trains the top model with DP-SGD inside its own budget")
        optimizer = private
    elif top_model_dp is not None:
        optimizer = top_model_dp.attach(model, optimizer, plan, label_rng(key, Stream.TOP_DP))
    return LabelParty(targets, dataset.task, model, optimizer, gradient_transform, label_transform.prediction_column,
                      top_model_dp, own, config.local_steps, pending)


def label_rng(key: int, stream: Stream) -> np.random.Generator:
    """One of the label party's streams (label mechanism, gradient defence, top model), from its secret key
    (`fedsim.streams.secret_key`), never from the bare seed."""
    return np.random.default_rng([key, stream])


def build_own_party(config: TrainConfig, dataset: VerticalDataset, key: int) -> FeatureParty | None:
    """The label party's own block and bottom model (`--label-party-features`), or None. A `FeatureParty`
    object held inside the label party, with no transcript: nothing it computes is sent anywhere."""
    block = dataset.label_block
    if block is None:
        return None
    model = seeded_init([key, Stream.OWN_MODEL], lambda: build_bottom_model(block.dim, config.model))
    optimizer = make_optimizer(config.optimizer, model.parameters(), config.lr)
    return FeatureParty(dataset.parties, block.train, dataset.train_ids, model, optimizer)
