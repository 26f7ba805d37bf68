"""One training run: dataset -> label defence -> parties -> runtime -> metrics, privacy claim, transcripts.

The `build_*` functions are deterministic in the config's seed, so any runtime (local or Flower) that
builds its parties with them trains bit-identically.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fedsim.config import TrainConfig
from fedsim.data import VerticalDataset, load_table, read_table, vertical_from_table
from fedsim.errors import check
from fedsim.metrics import task_metrics
from fedsim.models import TopModel, build_bottom_model, build_top_net, seeded_init
from fedsim.parties import FeatureParty, LabelParty, make_optimizer
from fedsim.privacy import PrivacyClaim, combine_claims
from fedsim.progress import progress_bar
from fedsim.protocol import GradientTransform, LabelTransform, TrainingPlan
from fedsim.rundir import FORMAT_VERSION, PartyView, check_output_dir, save_party, staged_directory, write_json_atomic
from fedsim.schedule import Schedule
from fedsim.transcript import Transcript, TranscriptRecorder


def load_dataset(config: TrainConfig) -> VerticalDataset:
    """The vertical dataset of a run (same config => same split, partition and encoding)."""
    rng = np.random.default_rng([config.seed, 0])
    if config.data is not None:
        features, target = read_table(config.data, config.target, config.id_column)
        name = Path(config.data).name
    else:
        features, target, _ = load_table(config.dataset, rng, config.rows)
        name = config.dataset
    return vertical_from_table(name, features, target, config.task, config.parties, config.seed, config.partition,
                               config.test_fraction)


def resolve_defenses(config: TrainConfig, task: str) -> tuple[LabelTransform, GradientTransform]:
    """The label party's two hooks, from `defenses/` by name (imported only when a defence is asked for)."""
    if config.label_defense is None and config.gradient_defense is None and not config.defense_params:
        return LabelTransform(), GradientTransform()
    import defenses

    return defenses.build(config, task)


def resolve_top_model_dp(config: TrainConfig) -> Any:
    """Opacus DP-SGD on the top model (`--defense-param top_dp_epsilon=EPS`), or None."""
    if not any(key.startswith("top_dp_") for key in config.defense_params):
        return None
    import defenses

    return defenses.build_top_model_dp(config)


def make_plan(config: TrainConfig, dataset: VerticalDataset) -> TrainingPlan:
    schedule = make_schedule(config, dataset)
    return TrainingPlan(dataset.task, dataset.n_train, config.batch_size, config.epochs, schedule.steps_per_epoch,
                        dataset.parties, tuple([config.model.embedding_dim] * dataset.parties))


def make_schedule(config: TrainConfig, dataset: VerticalDataset) -> Schedule:
    return Schedule(dataset.n_train, config.batch_size, config.epochs, config.seed)


def build_feature_party(
    config: TrainConfig, dataset: VerticalDataset, index: int, recorder: TranscriptRecorder | None = None
) -> FeatureParty:
    block = dataset.blocks[index]
    model = seeded_init([config.seed, 10, index], lambda: build_bottom_model(block.dim, config.model))
    optimizer = make_optimizer(config.optimizer, model.parameters(), config.lr)
    return FeatureParty(index, block.train, dataset.train_ids, model, optimizer, recorder)


def build_label_party(
    config: TrainConfig, dataset: VerticalDataset, label_transform: LabelTransform,
    gradient_transform: GradientTransform,
) -> LabelParty:
    """Privatise the labels once (label defence), then build the top model on the released targets only.

    Optional hooks of a gradient defence (dp_gradient): `target_normalization(targets, rng)` replaces the
    top model's offset/scale (which otherwise come from the targets in the clear), and
    `privatize_top_model(model, optimizer, plan, rng)` returns a DP optimizer. Top-model DP-SGD to a
    target epsilon (`top_dp_epsilon`, see defenses.dp_sgd) does the latter on its own and is kept on the
    party as `top_model_dp`, so every runtime reports it.
    """
    top_model_dp = resolve_top_model_dp(config)
    rng = np.random.default_rng([config.seed, 30])
    targets = np.asarray(label_transform.apply(dataset.y_train, dataset.task, rng), dtype=np.float64)
    targets = targets.reshape(len(targets), -1)
    if dataset.task == "regression":
        offset, scale = targets.mean(axis=0), targets.std(axis=0)
        scale = np.where(scale > 0, scale, 1.0)
    else:
        offset, scale = np.zeros(targets.shape[1]), np.ones(targets.shape[1])
    if hasattr(gradient_transform, "target_normalization"):
        offset, scale = gradient_transform.target_normalization(targets, np.random.default_rng([config.seed, 32]))
    in_dim = config.model.embedding_dim * dataset.parties
    model = seeded_init(
        [config.seed, 20],
        lambda: TopModel(build_top_net(in_dim, targets.shape[1], config.model), torch.tensor(offset),
                         torch.tensor(scale)),
    )
    optimizer = make_optimizer(config.optimizer, model.parameters(), config.lr)
    plan = make_plan(config, dataset)
    gradient_transform.prepare(plan, np.random.default_rng([config.seed, 31]))
    if hasattr(gradient_transform, "privatize_top_model"):
        check(top_model_dp is None, "top_dp_epsilon cannot be combined with dp_gradient, which already "
                                    "trains the top model with DP-SGD inside its own budget")
        optimizer = gradient_transform.privatize_top_model(model, optimizer, plan,
                                                           np.random.default_rng([config.seed, 33]))
    elif top_model_dp is not None:
        optimizer = top_model_dp.attach(model, optimizer, plan, np.random.default_rng([config.seed, 33]))
    party = LabelParty(targets, dataset.task, model, optimizer, gradient_transform, label_transform.prediction_column)
    party.top_model_dp = top_model_dp
    return party


def evaluate(
    feature_parties: list[FeatureParty], label_party: LabelParty, dataset: VerticalDataset
) -> dict[str, float]:
    embeddings = [party.embed(dataset.blocks[party.index].test) for party in feature_parties]
    return task_metrics(dataset.task, dataset.y_test, label_party.predict(embeddings))


@dataclass
class TrainResult:
    config: TrainConfig
    dataset: VerticalDataset
    metrics: dict[str, float]
    privacy: PrivacyClaim
    train_s: float
    steps: int
    transcripts: list[Transcript]
    feature_parties: list[FeatureParty]
    label_party: LabelParty
    transcript_dir: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def party_view(self, party: int = 0) -> PartyView:
        """What feature party `party` holds: the attacker's input, in memory."""
        fp = self.feature_parties[party]
        fp.model.eval()
        return PartyView(party, self.transcripts[party], self.dataset.blocks[party].train, self.dataset.train_ids,
                         fp.model, self.dataset.task, loss_name(self.dataset.task), self.config.batch_size,
                         self.dataset.parties, manifest(self))

    def _top_model_dp(self) -> dict[str, Any]:
        """Opacus DP-SGD on the top model, reported apart: it covers the weights, not the cut gradients."""
        top = getattr(self.label_party, "top_model_dp", None)
        return {"top_model_dp": top.report()} if top is not None else {}

    def to_json(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset.name,
            "task": self.dataset.task,
            "n_train": self.dataset.n_train,
            "n_test": self.dataset.n_test,
            "parties": self.dataset.parties,
            "runtime": self.config.runtime,
            "epochs": self.config.epochs,
            "seed": self.config.seed,
            "dropped_ids": self.dataset.dropped_ids,
            "test": self.metrics,
            "privacy": {
                "label_defense": self.config.label_defense,
                "gradient_defense": self.config.gradient_defense,
                "epsilon": self.privacy.epsilon,
                "delta": self.privacy.delta,
                "guarantee": self.privacy.guarantee,
                **({"details": self.privacy.details} if self.privacy.details else {}),
                **self._top_model_dp(),
            },
            "timing": {
                "train_s": self.train_s,
                "steps": self.steps,
                "per_step_ms": 1000 * self.train_s / max(self.steps, 1),
            },
            "transcript": str(self.transcript_dir) if self.transcript_dir is not None else None,
            **self.extra,
        }


def loss_name(task: str) -> str:
    return "mse" if task == "regression" else "bce_with_logits"


def manifest(result: TrainResult) -> dict[str, Any]:
    return {
        "format": FORMAT_VERSION,
        "config": result.config.model_dump(mode="json"),
        "dataset": result.dataset.name,
        "task": result.dataset.task,
        "loss": loss_name(result.dataset.task),
        "reduction": "mean",
        "seed": result.config.seed,
        "parties": result.dataset.parties,
        "n_train": result.dataset.n_train,
        "epochs_recorded": result.transcripts[0].epoch_numbers if result.transcripts else [],
        "shapes": [
            {"party": k, "features": b.dim, "embedding_dim": result.config.model.embedding_dim}
            for k, b in enumerate(result.dataset.blocks)
        ],
        "privacy": {"epsilon": result.privacy.epsilon, "delta": result.privacy.delta,
                    "guarantee": result.privacy.guarantee},
    }


def train(
    config: TrainConfig,
    transcript_dir: Path | None = None,
    overwrite: bool = False,
    stream: bool = False,
    record: bool = True,
    show_progress: bool = False,
) -> TrainResult:
    """Train once with the configured runtime; optionally save every feature party's transcript to a folder."""
    if transcript_dir is not None:
        transcript_dir = Path(transcript_dir)
        check_output_dir(transcript_dir, overwrite)
    dataset = load_dataset(config)
    label_transform, gradient_transform = resolve_defenses(config, dataset.task)
    if config.runtime == "flower":
        from fedsim.runtime.flower import train_flower

        return train_flower(config, dataset, transcript_dir, overwrite, show_progress)
    if transcript_dir is None:
        return _train_local(config, dataset, label_transform, gradient_transform, None, stream=False,
                            record=record, show_progress=show_progress)
    with staged_directory(transcript_dir, overwrite) as staging:
        result = _train_local(config, dataset, label_transform, gradient_transform, staging, stream, True,
                              show_progress)
        save_run(result, staging, transcripts_written=stream)
    result.transcript_dir = transcript_dir
    if stream:  # the memory-mapped transcripts pointed into the staging folder
        result.transcripts = [Transcript.load(transcript_dir / f"party_{k}", k, mmap=True)
                              for k in range(dataset.parties)]
    return result


def _train_local(
    config: TrainConfig, dataset: VerticalDataset, label_transform: LabelTransform,
    gradient_transform: GradientTransform, staging: Path | None, stream: bool, record: bool, show_progress: bool,
) -> TrainResult:
    from fedsim.runtime.local import run_local

    def recorder(k: int) -> TranscriptRecorder | None:
        if not record:
            return None
        folder = staging / f"party_{k}" if (stream and staging is not None) else None
        return TranscriptRecorder(k, config.model.embedding_dim, dataset.n_train, config.record_last_epochs, folder)

    feature_parties = [build_feature_party(config, dataset, k, recorder(k)) for k in range(dataset.parties)]
    label_party = build_label_party(config, dataset, label_transform, gradient_transform)
    schedule = make_schedule(config, dataset)
    start = time.perf_counter()
    with progress_bar(schedule.total_steps, f"training ({dataset.name})", show_progress) as advance:
        run_local(feature_parties, label_party, schedule, advance)
    train_s = time.perf_counter() - start
    transcripts = [p.recorder.finish() for p in feature_parties if p.recorder is not None]
    privacy = combine_claims(label_transform.privacy(), gradient_transform.privacy())
    return TrainResult(config, dataset, evaluate(feature_parties, label_party, dataset), privacy, train_s,
                       schedule.total_steps, transcripts, feature_parties, label_party)


def save_run(result: TrainResult, folder: Path, transcripts_written: bool = False) -> None:
    """Write the transcript folder (see fedsim.rundir for the layout)."""
    for k in range(result.dataset.parties):
        view = result.party_view(k)
        if transcripts_written:
            view.transcript = Transcript(k, [])  # already streamed into place
        save_party(folder / f"party_{k}", view)
    (folder / "truth").mkdir()
    np.savez(folder / "truth" / "labels.npz", train_ids=result.dataset.train_ids, y_train=result.dataset.y_train,
             test_ids=result.dataset.test_ids, y_test=result.dataset.y_test)
    write_json_atomic(folder / "manifest.json", manifest(result))
