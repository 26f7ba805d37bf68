"""What a feature party observed: per step its batch ids, the embeddings it sent, the gradients it received.

On disk a transcript is one folder per epoch holding four `.npy` arrays with one row per (step, sample):
`batch_ids` (sample ids), `steps` (step within the epoch), `embeddings` and `gradients` (float32, n x d).
Rows are in step order, so a step's batch is a contiguous slice. The recorder either fills preallocated
arrays in memory or streams rows straight into the `.npy` files (constant memory); either way it can keep
only the last E epochs.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import torch

from fedsim.integrity import damaged, load_array

ARRAYS = ("batch_ids", "steps", "embeddings", "gradients")


@runtime_checkable
class Recorder(Protocol):
    """Where a feature party writes each step it observed: `TranscriptRecorder` (memory or disk, local
    runtime) or the Flower client's `StateRecorder` (the node's state between messages)."""

    def record(self, epoch: int, step: int, batch_ids: np.ndarray, embeddings: torch.Tensor,
               gradients: torch.Tensor) -> None: ...


@dataclass
class EpochTranscript:
    epoch: int
    batch_ids: np.ndarray  # int64 (rows,)
    steps: np.ndarray  # int32 (rows,)
    embeddings: np.ndarray  # float32 (rows, d)
    gradients: np.ndarray  # float32 (rows, d)

    def batches(self) -> Iterator[tuple[int, slice]]:
        """(step, row slice) for each step of the epoch."""
        if len(self.steps) == 0:
            return
        bounds = np.flatnonzero(np.diff(self.steps)) + 1
        starts = np.concatenate([[0], bounds])
        ends = np.concatenate([bounds, [len(self.steps)]])
        for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
            yield int(self.steps[start]), slice(start, end)


@dataclass
class Transcript:
    party: int
    epochs: list[EpochTranscript]

    @property
    def embedding_dim(self) -> int:
        return self.epochs[0].embeddings.shape[1]

    @property
    def epoch_numbers(self) -> list[int]:
        return [e.epoch for e in self.epochs]

    def last(self, n_epochs: int | None) -> Transcript:
        """The same transcript restricted to its last `n_epochs` epochs (all if None)."""
        return Transcript(self.party, self.epochs if n_epochs is None else self.epochs[-n_epochs:])

    def save(self, directory: Path) -> None:
        for epoch in self.epochs:
            folder = directory / f"epoch_{epoch.epoch:04d}"
            folder.mkdir(parents=True, exist_ok=True)
            for name in ARRAYS:
                np.save(folder / f"{name}.npy", np.ascontiguousarray(getattr(epoch, name)))

    @classmethod
    def load(cls, directory: Path, party: int, mmap: bool = False) -> Transcript:
        """The epochs saved under `directory`; a missing or unreadable file is a one-line `UserError`."""
        epochs = []
        for folder in sorted(directory.glob("epoch_*")):
            number = folder.name.removeprefix("epoch_")
            if not number.isdigit():
                raise damaged(folder, "not an epoch folder name (epoch_NNNN)")
            arrays = {name: load_array(folder / f"{name}.npy", mmap) for name in ARRAYS}
            epochs.append(EpochTranscript(int(number), **arrays))
        return cls(party, epochs)


class _NpyStream:
    """Appends rows to a `.npy` file whose final shape is known up front (no memory held)."""

    def __init__(self, path: Path, dtype: np.dtype, shape: tuple[int, ...]) -> None:
        self.file = open(path, "wb")  # noqa: SIM115 - closed in close()
        header = {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False, "shape": shape}
        np.lib.format.write_array_header_1_0(self.file, header)
        self.dtype = np.dtype(dtype)

    def write(self, rows: np.ndarray) -> None:
        self.file.write(np.ascontiguousarray(rows, dtype=self.dtype).tobytes())

    def close(self) -> None:
        self.file.close()


class TranscriptRecorder:
    """Collects one feature party's transcript during training, in memory or streamed to `directory`."""

    def __init__(
        self, party: int, dim: int, rows_per_epoch: int, keep_last: int | None = None, directory: Path | None = None
    ) -> None:
        self.party, self.dim, self.rows = party, dim, rows_per_epoch
        self.keep_last, self.directory = keep_last, directory
        self._epochs: list[EpochTranscript] = []  # in memory
        self._streams: dict[str, _NpyStream] = {}
        self._stream_epochs: list[int] = []
        self._epoch = -1
        self._cursor = 0

    def _open_epoch(self, epoch: int) -> None:
        self._close_streams()
        self._epoch, self._cursor = epoch, 0
        shapes = {"batch_ids": (self.rows,), "steps": (self.rows,), "embeddings": (self.rows, self.dim),
                  "gradients": (self.rows, self.dim)}
        dtypes = {"batch_ids": np.int64, "steps": np.int32, "embeddings": np.float32, "gradients": np.float32}
        if self.directory is None:
            self._epochs.append(EpochTranscript(epoch, *(np.empty(shapes[n], dtypes[n]) for n in ARRAYS)))
            if self.keep_last is not None and len(self._epochs) > self.keep_last:
                self._epochs.pop(0)
            return
        folder = self.directory / f"epoch_{epoch:04d}"
        folder.mkdir(parents=True, exist_ok=True)
        self._streams = {n: _NpyStream(folder / f"{n}.npy", dtypes[n], shapes[n]) for n in ARRAYS}
        self._stream_epochs.append(epoch)
        if self.keep_last is not None and len(self._stream_epochs) > self.keep_last:
            shutil.rmtree(self.directory / f"epoch_{self._stream_epochs.pop(0):04d}")

    def record(self, epoch: int, step: int, batch_ids: np.ndarray, embeddings: torch.Tensor,
               gradients: torch.Tensor) -> None:
        if epoch != self._epoch:
            self._open_epoch(epoch)
        n = len(batch_ids)
        h = embeddings.detach().numpy()
        g = gradients.detach().numpy()
        if self.directory is None:
            current = self._epochs[-1]
            span = slice(self._cursor, self._cursor + n)
            current.batch_ids[span] = batch_ids
            current.steps[span] = step
            current.embeddings[span] = h
            current.gradients[span] = g
        else:
            self._streams["batch_ids"].write(batch_ids)
            self._streams["steps"].write(np.full(n, step, dtype=np.int32))
            self._streams["embeddings"].write(h)
            self._streams["gradients"].write(g)
        self._cursor += n

    def _close_streams(self) -> None:
        for stream in self._streams.values():
            stream.close()
        self._streams = {}

    def finish(self) -> Transcript:
        self._close_streams()
        if self.directory is None:
            return Transcript(self.party, self._epochs)
        return Transcript.load(self.directory, self.party, mmap=True)
