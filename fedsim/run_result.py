"""The outcome of one training run, the same object for every runtime, and its on-disk form."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fedsim.config import TrainConfig
from fedsim.data import VerticalDataset
from fedsim.parties import FeatureParty, LabelParty
from fedsim.privacy import PrivacyClaim
from fedsim.rundir import FORMAT_VERSION, PartyView, save_party, write_json_atomic
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
                         self.dataset.parties, manifest(self))

    def _top_model_dp(self) -> dict[str, Any]:
        """Opacus DP-SGD on the top model, reported apart: it covers the weights, not the cut gradients."""
        top = self.label_party.top_model_dp
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
