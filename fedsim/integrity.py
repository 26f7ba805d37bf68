"""Self-checking transcript folders: what the manifest records about every file, and the checks a loader runs.

The manifest lists each file of the folder with its sha256 (and, for `.npy` arrays, shape and dtype), so a
file changed, truncated or swapped after training is refused by name. The structural checks (row counts,
dimensions, integer steps and ids, the recorded epochs, finite values) run on every folder, also on old
ones written before checksums, because the attacks rely on them and fail with tracebacks otherwise.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict

from fedsim.errors import UserError, first_line

CHUNK = 1 << 22  # bytes hashed per read


class FileRecord(BaseModel):
    """One file of a transcript folder as written: its sha256 and, for a `.npy` array, shape and dtype."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sha256: str
    shape: list[int] | None = None
    dtype: str | None = None


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def describe_files(folder: Path, skip: str) -> dict[str, FileRecord]:
    """A record of every file under `folder` (but `skip`, the manifest itself), keyed by relative posix path."""
    records = {}
    for path in sorted(p for p in Path(folder).rglob("*") if p.is_file() and p.name != skip):
        shape = dtype = None
        if path.suffix == ".npy":
            array = np.load(path, mmap_mode="r")
            shape, dtype = list(array.shape), array.dtype.str
        records[path.relative_to(folder).as_posix()] = FileRecord(sha256=sha256(path), shape=shape, dtype=dtype)
    return records


def damaged(path: Path, problem: str) -> UserError:
    """The one-line refusal for a damaged transcript file."""
    return UserError(f"corrupt transcript directory: {str(path)!r}: {problem}")


def load_array(path: Path, mmap: bool = False) -> np.ndarray:
    """`np.load` of one `.npy` file, else a one-line refusal naming it (missing, truncated, not an array)."""
    try:
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        problem = "missing" if not Path(path).exists() else f"not a readable .npy array ({first_line(exc)})"
        raise damaged(path, problem) from None


def verify_files(folder: Path, records: dict[str, FileRecord], prefix: str) -> None:
    """Every recorded file under `prefix` exists and has its recorded checksum (shape and dtype first, which
    name the problem more precisely than a checksum mismatch)."""
    for name, record in records.items():
        if not name.startswith(prefix):
            continue
        path = Path(folder) / name
        if not path.is_file():
            raise damaged(path, "missing (the manifest lists it)")
        if record.shape is not None:
            array = load_array(path, mmap=True)
            if list(array.shape) != record.shape or array.dtype.str != record.dtype:
                raise damaged(path, f"shape {list(array.shape)} dtype {array.dtype.str}, but the manifest "
                                    f"records shape {record.shape} dtype {record.dtype}")
        if sha256(path) != record.sha256:
            raise damaged(path, "checksum mismatch: changed or damaged after training")


def require(condition: bool, path: Path, problem: str) -> None:
    if not condition:
        raise damaged(path, problem)


def check_integers(array: np.ndarray, path: Path, ndim: int = 1) -> None:
    require(array.ndim == ndim, path, f"expected {ndim} dimension(s), found shape {list(array.shape)}")
    require(array.dtype.kind in "iu", path, f"expected integers, found dtype {array.dtype}")


def check_floats(array: np.ndarray, path: Path, columns: int) -> None:
    """A 2-D float array with `columns` columns and only finite values."""
    require(array.ndim == 2, path, f"expected 2 dimensions, found shape {list(array.shape)}")
    require(array.dtype.kind == "f", path, f"expected floats, found dtype {array.dtype}")
    require(array.shape[1] == columns, path, f"{array.shape[1]} columns, the manifest records {columns}")
    bad = int(np.count_nonzero(~np.isfinite(array)))
    require(bad == 0, path, f"{bad} non-finite value(s) (NaN or inf)")
