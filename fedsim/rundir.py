"""Folders written atomically, and the on-disk form of a training run's transcripts.

Layout of a transcript folder (`fedsim train --transcript DIR`):

    DIR/manifest.json              config, dataset, seed, task, loss, parties and shapes
    DIR/party_K/epoch_NNNN/*.npy   what feature party K observed (see fedsim.transcript)
    DIR/party_K/features.npy       party K's own training features (rows aligned with sample_ids.npy)
    DIR/party_K/sample_ids.npy
    DIR/party_K/bottom_model.pt    party K's trained bottom model (state dict)
    DIR/truth/labels.npz           the true labels, for scoring only: attack code never reads it
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from fedsim.config import ModelConfig
from fedsim.errors import UserError, check
from fedsim.models import build_bottom_model
from fedsim.transcript import Transcript

FORMAT_VERSION = 1


def check_output_dir(path: Path, overwrite: bool) -> None:
    check(overwrite or not path.exists(),
          f"output directory {str(path)!r} already exists; pass --overwrite to replace it")


@contextmanager
def staged_directory(final: Path, overwrite: bool = False) -> Iterator[Path]:
    """Write into a hidden sibling folder, then rename it to `final`; on error nothing is left behind."""
    check_output_dir(final, overwrite)
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = final.parent / f".{final.name}.partial-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    try:
        yield staging
        if final.exists():
            shutil.rmtree(final)
        os.replace(staging, final)
    finally:
        if staging.exists():
            shutil.rmtree(staging)


def write_json_atomic(path: Path, payload: Any) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=True))
    os.replace(tmp, path)


@dataclass
class PartyView:
    """Everything one feature party holds after training: the attacker's whole input besides its knowledge."""

    party: int
    transcript: Transcript
    features: np.ndarray
    sample_ids: np.ndarray
    bottom_model: nn.Module
    task: str
    loss: str  # "mse" | "bce_with_logits", reduction "mean" over the batch
    batch_size: int
    n_parties: int
    manifest: dict[str, Any]

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


def load_manifest(directory: Path) -> dict[str, Any]:
    directory = Path(directory)
    check(directory.is_dir(), f"transcript directory {str(directory)!r} does not exist")
    path = directory / "manifest.json"
    check(path.is_file(), f"{str(directory)!r} is not a transcript directory: manifest.json is missing")
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise UserError(f"corrupt transcript manifest {str(path)!r}: {exc}") from None
    check(manifest.get("format") == FORMAT_VERSION, f"unsupported transcript format in {str(path)!r}")
    return manifest


def load_party_view(directory: Path, party: int = 0) -> PartyView:
    """Load what feature party `party` holds from a transcript folder (never the truth file)."""
    directory = Path(directory)
    manifest = load_manifest(directory)
    n_parties = int(manifest["parties"])
    check(0 <= party < n_parties, f"party must be in 0..{n_parties - 1}, got {party}")
    folder = directory / f"party_{party}"
    try:
        transcript = Transcript.load(folder, party)
        features = np.load(folder / "features.npy")
        sample_ids = np.load(folder / "sample_ids.npy")
        model = build_bottom_model(features.shape[1], ModelConfig(**manifest["config"]["model"]))
        model.load_state_dict(torch.load(folder / "bottom_model.pt", weights_only=True))
    except (OSError, ValueError, RuntimeError, KeyError) as exc:
        raise UserError(f"corrupt transcript directory {str(directory)!r}: {str(exc).splitlines()[0]}") from None
    check(len(transcript.epochs) > 0, f"transcript directory {str(directory)!r} holds no recorded epoch")
    model.eval()
    return PartyView(
        party=party, transcript=transcript, features=features, sample_ids=sample_ids, bottom_model=model,
        task=manifest["task"], loss=manifest["loss"], batch_size=int(manifest["config"]["batch_size"]),
        n_parties=n_parties, manifest=manifest,
    )


def load_truth(directory: Path) -> dict[str, np.ndarray]:
    """The true labels, for scoring attacks (never passed to an attack)."""
    path = Path(directory) / "truth" / "labels.npz"
    check(path.is_file(), f"transcript directory {str(directory)!r} has no truth/labels.npz")
    with np.load(path) as data:
        return {k: data[k] for k in data.files}
