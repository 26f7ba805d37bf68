"""The on-disk form of a training run's transcripts: its typed manifest and what each feature party holds.

Layout of a transcript folder (`fedsim train --transcript DIR`):

    DIR/manifest.json              `TranscriptManifest`: format, public run facts, dataset, classes, shapes, privacy
    DIR/party_K/epoch_NNNN/*.npy   what feature party K observed (see fedsim.transcript)
    DIR/party_K/features.npy       party K's own training features (rows aligned with sample_ids.npy)
    DIR/party_K/sample_ids.npy
    DIR/party_K/bottom_model.pt    party K's trained bottom model (state dict)
    DIR/truth/labels.npz           the true labels, for scoring only: attack code never reads it
"""

from __future__ import annotations

import json
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from torch import nn

from fedsim.config import ModelConfig, TrainConfig
from fedsim.errors import UserError, check, first_line
from fedsim.fileio import write_json_atomic
from fedsim.integrity import (
    FileRecord,
    check_floats,
    check_integers,
    damaged,
    describe_files,
    load_array,
    require,
    verify_files,
)
from fedsim.models import build_bottom_model
from fedsim.transcript import Transcript

# 2: n_classes and classes (multiclass); format 1 folders are read as regression/binary.
# 3: `public` (PublicRunFacts) replaces `config` and `seed`; older folders load with the seed dropped.
# 4: `files`: sha256, shape and dtype of every file, checked on load (older folders: structural checks only).
FORMAT_VERSION = 4
OLDEST_FORMAT = 1
# Defence parameters every party may know (the public label range, the clip norm); the others are the label
# party's own choices and stay out of the manifest.
PUBLIC_DEFENSE_PARAMS = frozenset({"low", "high", "label_low", "label_high", "clip"})
MANIFEST = "manifest.json"


class PartyShape(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    party: int = Field(ge=0)
    features: int = Field(ge=1)
    embedding_dim: int = Field(ge=1)


class ManifestPrivacy(BaseModel):
    """The run's label-DP claim (epsilon None: no formal guarantee)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    epsilon: float | None
    delta: float | None
    guarantee: str


class BottomModelFacts(BaseModel):
    """The feature parties' bottom-model architecture (each party builds its own; the top model is private)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    embedding_dim: int = Field(ge=1)
    hidden: int = Field(ge=1)
    depth: int = Field(ge=0)

    def model(self) -> ModelConfig:
        return ModelConfig.model_validate({"embedding_dim": self.embedding_dim, "bottom_hidden": self.hidden,
                                           "bottom_depth": self.depth})


class DefenseFacts(BaseModel):
    """What the protocol announces about the label party's defences: names, budget, public parameters."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    label_defense: str | None = None
    gradient_defense: str | None = None
    epsilon: float | None = None
    delta: float | None = None
    params: dict[str, float | int | str | bool] = Field(default_factory=dict)  # PUBLIC_DEFENSE_PARAMS only


class PublicRunFacts(BaseModel):
    """What every party of a run knows: the attacker's whole knowledge of the run's settings.

    Never the seed, the label party's top model, optimiser or private defence parameters, or anything that
    derives its randomness (see fedsim.streams): an attack that could read them could replay the label
    party's noise and undo the defence.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    task: Literal["regression", "binary", "multiclass"]
    loss: Literal["mse", "bce_with_logits", "cross_entropy"]
    batch_size: int = Field(ge=1)
    parties: int = Field(ge=1)
    epochs: int = Field(ge=1)
    local_steps: int = Field(ge=1)
    n_classes: int = Field(ge=0)
    bottom_model: BottomModelFacts
    malicious_party: int = Field(ge=0)
    malicious_update_scale: float = Field(gt=0)
    defense: DefenseFacts

    @classmethod
    def of(cls, config: TrainConfig, task: str, loss: str, n_classes: int) -> PublicRunFacts:
        """The public part of `config` (the run's full settings, held by the label party only)."""
        model = config.model
        return cls.model_validate({
            "task": task, "loss": loss, "batch_size": config.batch_size, "parties": config.parties,
            "epochs": config.epochs, "local_steps": config.local_steps, "n_classes": n_classes,
            "bottom_model": BottomModelFacts(embedding_dim=model.embedding_dim, hidden=model.bottom_hidden,
                                             depth=model.bottom_depth),
            "malicious_party": config.malicious_party, "malicious_update_scale": config.malicious_update_scale,
            "defense": DefenseFacts(label_defense=config.label_defense, gradient_defense=config.gradient_defense,
                                    epsilon=config.epsilon, delta=config.delta,
                                    params={k: v for k, v in config.defense_params.items()
                                            if k in PUBLIC_DEFENSE_PARAMS}),
        })


class TranscriptManifest(BaseModel):
    """manifest.json of a transcript folder: what an attack may know about the run besides its party's files.

    `format` is the version of the folder layout; a reader refuses a newer one rather than misread it.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: int = FORMAT_VERSION
    public: PublicRunFacts
    dataset: str
    task: Literal["regression", "binary", "multiclass"]
    loss: Literal["mse", "bce_with_logits", "cross_entropy"]
    reduction: Literal["mean"] = "mean"
    parties: int = Field(ge=1)
    n_train: int = Field(ge=1)
    n_classes: int = Field(ge=0)  # 0 regression, 2 binary, K multiclass (the top model's K logits)
    classes: list[str]  # class names, index = class id (the labels' encoding); empty for regression
    epochs_recorded: list[int]
    shapes: list[PartyShape]
    privacy: ManifestPrivacy

    def write(self, folder: Path) -> None:
        """Write manifest.json last, with a `files` entry recording every file already in `folder` (checked by
        `recorded_files` on load; kept out of this model, which is what an attack may know about the run)."""
        files = FILES.dump_python(describe_files(folder, skip=MANIFEST), mode="json")
        write_json_atomic(Path(folder) / MANIFEST, {**self.model_dump(mode="json"), "files": files})

    @classmethod
    def read(cls, folder: Path) -> TranscriptManifest:
        """The manifest of transcript folder `folder`, else a one-line `UserError` (missing, corrupt, newer)."""
        folder = Path(folder)
        check(folder.is_dir(), f"transcript directory {str(folder)!r} does not exist")
        path = folder / MANIFEST
        check(path.is_file(), f"{str(folder)!r} is not a transcript directory: {MANIFEST} is missing")
        try:
            raw = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise UserError(f"corrupt transcript manifest {str(path)!r}: {exc}") from None
        version = raw.get("format") if isinstance(raw, dict) else None
        check(isinstance(version, int) and not isinstance(version, bool),
              f"corrupt transcript manifest {str(path)!r}: no format version")
        check(version <= FORMAT_VERSION, f"transcript folder {str(folder)!r} has format {version}, newer than "
                                         f"this fedsim reads ({FORMAT_VERSION}): upgrade fedsim")
        check(version >= OLDEST_FORMAT, f"unsupported transcript format {version} in {str(path)!r} "
                                        f"(this fedsim reads formats {OLDEST_FORMAT}..{FORMAT_VERSION})")
        if version == 1:  # format 1 had no classes: regression, or binary labels 0/1
            binary = raw.get("task") == "binary"
            raw = {**raw, "format": FORMAT_VERSION, "n_classes": 2 if binary else 0,
                   "classes": ["0", "1"] if binary else []}
        raw = {k: v for k, v in raw.items() if k != "files"}
        try:
            return cls.model_validate(upgrade(raw) if version < 3 else raw)
        except ValidationError as exc:
            error = exc.errors()[0]
            where = ".".join(str(p) for p in error["loc"])
            raise UserError(f"corrupt transcript manifest {str(path)!r}: {where}: {error['msg']}") from None


FILES = TypeAdapter(dict[str, FileRecord])


def recorded_files(folder: Path) -> dict[str, FileRecord]:
    """The manifest's record of each file (empty for folders written before format 4); call after `read`."""
    path = Path(folder) / MANIFEST
    try:
        return FILES.validate_python(json.loads(path.read_text()).get("files", {}))
    except ValidationError as exc:
        raise UserError(f"corrupt transcript manifest {str(path)!r}: files: {exc.errors()[0]['msg']}") from None


def upgrade(raw: dict) -> dict:
    """A format 1-2 manifest in format 3: the public facts of its full config; the config and seed dropped."""
    config = TrainConfig.model_validate(raw.get("config"))
    public = PublicRunFacts.of(config, raw.get("task", ""), raw.get("loss", ""), raw.get("n_classes", -1))
    kept = {k: v for k, v in raw.items() if k not in ("config", "seed")}
    return {**kept, "format": FORMAT_VERSION, "public": public.model_dump(mode="json")}


@dataclass
class PartyView:
    """Everything one feature party holds after training: the attacker's whole input besides its knowledge."""

    party: int
    transcript: Transcript
    features: np.ndarray
    sample_ids: np.ndarray
    bottom_model: nn.Module
    task: str
    loss: str  # "mse" | "bce_with_logits" | "cross_entropy", reduction "mean" over the batch
    batch_size: int
    n_parties: int
    manifest: TranscriptManifest

    @property
    def public(self) -> PublicRunFacts:
        """The run's public settings (no seed, no private defence parameter)."""
        return self.manifest.public

    @property
    def n_classes(self) -> int:
        """0 for regression, 2 for binary, K for multiclass (public: the top model outputs K logits)."""
        return self.manifest.n_classes

    def rows_of(self, ids: np.ndarray) -> np.ndarray:
        """Positions of `ids` in this party's feature table."""
        order = np.argsort(self.sample_ids)
        pos = np.searchsorted(self.sample_ids, ids, sorter=order)
        rows = order[np.clip(pos, 0, len(order) - 1)]
        if not np.array_equal(self.sample_ids[rows], ids):
            raise UserError("some sample ids are not in this party's feature table")
        return rows

    @torch.no_grad()
    def embed(self, rows: np.ndarray | None = None) -> torch.Tensor:
        x = self.features if rows is None else self.features[rows]
        return self.bottom_model(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)))


def save_party(folder: Path, view: PartyView) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    view.transcript.save(folder)
    np.save(folder / "features.npy", np.asarray(view.features, dtype=np.float32))
    np.save(folder / "sample_ids.npy", view.sample_ids)
    torch.save(view.bottom_model.state_dict(), folder / "bottom_model.pt")


def load_party_view(directory: Path, party: int = 0) -> PartyView:
    """Load what feature party `party` holds from a transcript folder (never the truth file), refusing a
    damaged folder in one line that names the file and the problem."""
    directory = Path(directory)
    manifest = TranscriptManifest.read(directory)
    n_parties = manifest.parties
    check(0 <= party < n_parties, f"party must be in 0..{n_parties - 1}, got {party}")
    check_manifest(directory, manifest)
    check(any(s.party == party for s in manifest.shapes),
          f"transcript directory {str(directory)!r} holds only party {[s.party for s in manifest.shapes]}'s record, "
          f"not party {party}'s: give --party {manifest.shapes[0].party}")
    folder = directory / f"party_{party}"
    check(folder.is_dir(), f"corrupt transcript directory {str(directory)!r}: party_{party}/ is missing "
                           f"(the manifest records {n_parties} parties)")
    verify_files(directory, recorded_files(directory), f"party_{party}/")
    transcript = Transcript.load(folder, party)
    features = load_array(folder / "features.npy")
    sample_ids = load_array(folder / "sample_ids.npy")
    check(len(transcript.epochs) > 0, f"transcript directory {str(directory)!r} holds no recorded epoch")
    shape = next(s for s in manifest.shapes if s.party == party)  # check_manifest: each party at most once
    check_party_arrays(folder, manifest, shape, transcript, features, sample_ids)
    model = build_bottom_model(features.shape[1], manifest.public.bottom_model.model())
    try:
        model.load_state_dict(torch.load(folder / "bottom_model.pt", weights_only=True))
    except (OSError, ValueError, RuntimeError, EOFError, pickle.UnpicklingError) as exc:
        raise damaged(folder / "bottom_model.pt", f"not this run's bottom model ({first_line(exc)})") from None
    model.eval()
    return PartyView(
        party=party, transcript=transcript, features=features, sample_ids=sample_ids, bottom_model=model,
        task=manifest.task, loss=manifest.loss, batch_size=manifest.public.batch_size,
        n_parties=n_parties, manifest=manifest,
    )


def check_manifest(directory: Path, manifest: TranscriptManifest) -> None:
    """The manifest agrees with itself: at most one shape per party, in order (a feature party's own transcript
    from a per-party-files deployment lists only its own), and the public party count."""
    path = directory / MANIFEST
    listed = [s.party for s in manifest.shapes]
    require(bool(listed) and listed == sorted(set(listed)) and all(0 <= k < manifest.parties for k in listed), path,
            f"shapes list parties {listed}, but parties is {manifest.parties}")
    require(manifest.public.parties == manifest.parties, path,
            f"parties is {manifest.parties}, but the public run facts say {manifest.public.parties}")


def check_party_arrays(folder: Path, manifest: TranscriptManifest, shape: PartyShape, transcript: Transcript,
                       features: np.ndarray, sample_ids: np.ndarray) -> None:
    """What the attacks rely on: the recorded epochs, row counts, dimensions, integer ids and steps, finite
    values, and batch ids that are the party's own samples."""
    check_integers(sample_ids, folder / "sample_ids.npy")
    require(len(sample_ids) == manifest.n_train, folder / "sample_ids.npy",
            f"{len(sample_ids)} rows, the manifest records n_train = {manifest.n_train}")
    require(len(np.unique(sample_ids)) == len(sample_ids), folder / "sample_ids.npy", "repeated sample ids")
    check_floats(features, folder / "features.npy", shape.features)
    require(len(features) == len(sample_ids), folder / "features.npy",
            f"{len(features)} rows, but sample_ids.npy has {len(sample_ids)}")
    require(transcript.epoch_numbers == manifest.epochs_recorded, folder,
            f"holds epochs {transcript.epoch_numbers}, the manifest records {manifest.epochs_recorded} "
            f"(an epoch folder was deleted or added)")
    for epoch in transcript.epochs:
        where = folder / f"epoch_{epoch.epoch:04d}"
        check_integers(epoch.batch_ids, where / "batch_ids.npy")
        check_integers(epoch.steps, where / "steps.npy")
        for name in ("embeddings", "gradients"):
            array = getattr(epoch, name)
            check_floats(array, where / f"{name}.npy", shape.embedding_dim)
            require(len(array) == len(epoch.batch_ids), where / f"{name}.npy",
                    f"{len(array)} rows, but batch_ids.npy has {len(epoch.batch_ids)}")
        require(len(epoch.steps) == len(epoch.batch_ids), where / "steps.npy",
                f"{len(epoch.steps)} rows, but batch_ids.npy has {len(epoch.batch_ids)}")
        require(bool(np.all(np.diff(epoch.steps) >= 0)), where / "steps.npy", "step numbers are not in order")
        require(bool(np.isin(epoch.batch_ids, sample_ids).all()), where / "batch_ids.npy",
                "ids that are not in sample_ids.npy")


def load_truth(directory: Path) -> dict[str, np.ndarray]:
    """The true labels, for scoring attacks (never passed to an attack)."""
    path = Path(directory) / "truth" / "labels.npz"
    check(path.is_file(), f"transcript directory {str(directory)!r} has no truth/labels.npz")
    TranscriptManifest.read(directory)
    verify_files(directory, recorded_files(directory), "truth/")
    try:
        with np.load(path) as data:
            truth = {k: data[k] for k in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise damaged(path, f"not a readable .npz archive ({first_line(exc)})") from None
    missing = sorted({"train_ids", "y_train"} - set(truth))
    require(not missing, path, f"no {', '.join(missing)} array")
    return truth
