"""The outcome of one training run, built by `finish_run` for every runtime, and its on-disk form."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fedsim.config import TrainConfig
from fedsim.data import VerticalDataset
from fedsim.fileio import staged_directory
from fedsim.metrics import task_metrics
from fedsim.parties import FeatureParty, LabelParty
from fedsim.privacy import PrivacyClaim, combine_claims
from fedsim.protocol import GradientTransform, LabelTransform
from fedsim.rundir import ManifestPrivacy, PartyShape, PartyView, PublicRunFacts, TranscriptManifest, save_party
from fedsim.transcript import Transcript


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
                         self.dataset.parties, self.manifest())

    def _top_model_dp(self) -> dict[str, Any]:
        """Opacus DP-SGD on the top model, reported apart: it covers the weights, not the cut gradients."""
        top = self.label_party.top_model_dp
        return {"top_model_dp": top.report()} if top is not None else {}

    def public_facts(self) -> PublicRunFacts:
        return PublicRunFacts.of(self.config, self.dataset.task, loss_name(self.dataset.task), self.dataset.n_classes)

    def manifest(self) -> TranscriptManifest:
        """What the transcript folder's manifest.json records about this run (also on in-memory views)."""
        return TranscriptManifest(
            public=self.public_facts(), dataset=self.dataset.name, task=self.dataset.task,
            loss=loss_name(self.dataset.task), parties=self.dataset.parties, n_train=self.dataset.n_train,
            n_classes=self.dataset.n_classes, classes=self.dataset.classes,
            epochs_recorded=self.transcripts[0].epoch_numbers if self.transcripts else [],
            shapes=[PartyShape(party=k, features=b.dim, embedding_dim=self.config.model.embedding_dim)
                    for k, b in enumerate(self.dataset.blocks)],
            privacy=ManifestPrivacy(epsilon=self.privacy.epsilon, delta=self.privacy.delta,
                                    guarantee=self.privacy.guarantee),
        )

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
            **({"missing_values": {"impute": self.config.impute, "columns": self.dataset.missing_values,
                                   "rows_dropped": self.dataset.missing_rows_dropped}}
               if self.dataset.missing_values else {}),
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


EVAL_CHUNK = 1 << 16  # test rows per forward pass when a run is evaluated
LOSS_NAMES = {"regression": "mse", "binary": "bce_with_logits", "multiclass": "cross_entropy"}


def loss_name(task: str) -> str:
    """The label party's loss (fedsim.parties.LOSSES), reduction "mean", as the manifest names it."""
    return LOSS_NAMES[task]


def finish_run(
    config: TrainConfig, dataset: VerticalDataset, feature_parties: list[FeatureParty], label_party: LabelParty,
    label_transform: LabelTransform, gradient_transform: GradientTransform, train_s: float, steps: int,
    transcripts: list[Transcript], extra: dict[str, Any] | None = None,
    test_embeddings: list[np.ndarray] | None = None,
) -> TrainResult:
    """The result of a finished run, the same for every runtime: test metrics of the trained parties and the
    privacy claim of the label party's two hooks combined. The test set runs in row chunks, so a large one
    never holds every hidden activation at once. `test_embeddings[k]`: feature party k's embeddings of the
    test rows, computed on its own machine (per-party files: the label party holds no feature block)."""
    own = dataset.label_block.test if dataset.label_block is not None else None

    def embedded(k: int, rows: slice) -> torch.Tensor:
        if test_embeddings is not None:
            return torch.from_numpy(test_embeddings[k][rows])
        return feature_parties[k].embed(dataset.blocks[k].test[rows])

    predictions = [
        label_party.predict([embedded(k, slice(start, start + EVAL_CHUNK)) for k in range(dataset.parties)],
                            own[start : start + EVAL_CHUNK] if own is not None else None)
        for start in range(0, dataset.n_test, EVAL_CHUNK)
    ]
    metrics = task_metrics(dataset.task, dataset.y_test, np.concatenate(predictions))
    privacy = combine_claims(label_transform.privacy(), gradient_transform.privacy())
    extra = {"communication": communication(config, dataset, steps), **(extra or {})}
    return TrainResult(config, dataset, metrics, privacy, train_s, steps, transcripts, feature_parties, label_party,
                       extra=extra)


def communication(config: TrainConfig, dataset: VerticalDataset, steps: int) -> dict[str, Any]:
    """What the protocol sends, in payload bytes: per feature party, its float32 embeddings up and, down, its
    float32 cut gradients and the batch's int64 row ids; every epoch sends every training row once, so the
    figures are the same in both runtimes (the Flower messages add framing, not counted here). With FedBCD
    (`local_steps` Q) each exchange is followed by Q updates, so updates = Q x exchanges."""
    rows = config.epochs * dataset.n_train
    dim = config.model.embedding_dim
    party = {"embeddings_up": 4 * rows * dim, "gradients_down": 4 * rows * dim, "batch_ids_down": 8 * rows}
    per_party = sum(party.values())
    return {
        "exchanges": steps, "updates_per_exchange": config.local_steps, "per_party": party,
        "bytes_per_party_per_exchange": per_party / max(steps, 1),
        "total_bytes": per_party * dataset.parties,
    }


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
    result.manifest().write(folder)


def write_run(result: TrainResult, folder: Path, overwrite: bool = False, private: bool = False) -> None:
    """Save a run trained in memory as transcript folder `folder`, all or nothing (`private`: 0700/0600)."""
    with staged_directory(folder, overwrite, private) as staging:
        save_run(result, staging)
    result.transcript_dir = folder
