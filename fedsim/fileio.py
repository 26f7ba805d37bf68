"""All-or-nothing file and folder writes, and the one conversion of results to plain JSON values.

Every writer fills a hidden temporary sibling and renames it into place (`os.replace` is atomic on one
file system), so a killed process leaves either the old file or the new one, never half of one.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import shutil
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from fedsim.errors import UserError, check


def write_atomic(path: Path, writer: Callable[[Path], None]) -> None:
    """Let `writer` fill a temporary sibling of `path`, then rename it into place (all or nothing).

    Temporary files end in `.tmp`, so a folder's leftovers from a killed run can be swept by that pattern.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        writer(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_json_atomic(path: Path, payload: Any, private: bool = False) -> None:
    """`payload` (numpy values converted by `to_jsonable`) as indented, key-sorted JSON, written atomically;
    `private`: mode 0600 from the moment the file exists (a label party's result names its data)."""
    text = json.dumps(to_jsonable(payload), indent=2, sort_keys=True)

    def write(tmp: Path) -> None:
        with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600 if private else 0o666), "w") as f:
            f.write(text)

    write_atomic(path, write)


def to_jsonable(value: Any) -> Any:
    """A copy of `value` that `json.dumps` accepts: numpy and torch scalars and arrays become Python numbers
    and lists, tuples become lists, paths become strings, mapping keys become strings."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "tolist"):  # numpy arrays, torch tensors
        return value.tolist()
    return value


def strict_json(value: Any) -> str:
    """`value` as strict JSON (RFC 8259): an undefined metric (NaN) or an infinite one is `null`, never the
    `NaN`/`Infinity` tokens that strict parsers reject."""
    return json.dumps(_nulls(to_jsonable(value)), allow_nan=False)


def _nulls(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _nulls(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_nulls(v) for v in value]
    return value


def check_output_dir(path: Path, overwrite: bool) -> None:
    check(overwrite or not path.exists(),
          f"output directory {str(path)!r} already exists; pass --overwrite to replace it")


@contextmanager
def staged_directory(final: Path, overwrite: bool = False, private: bool = False) -> Iterator[Path]:
    """Write into a hidden sibling folder, then rename it to `final`; on error nothing is left behind.
    `private`: the folder is 0700 from its creation on, and every folder in it 0700, every file 0600.

    The staging folder's name carries the writer's process id, so the next run in the same folder sweeps the
    ones whose process is gone (a `kill -9`), and says so on stderr."""
    check_output_dir(final, overwrite)
    final.parent.mkdir(parents=True, exist_ok=True)
    sweep_stale_staging(final)
    staging = final.parent / f".{final.name}.partial-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    staging.mkdir(mode=0o700 if private else 0o777)
    try:
        yield staging
        if private:
            for path in staging.rglob("*"):
                path.chmod(0o700 if path.is_dir() else 0o600)
        if final.exists():
            shutil.rmtree(final)
        os.replace(staging, final)
    finally:
        if staging.exists():
            shutil.rmtree(staging)


def sweep_stale_staging(final: Path) -> None:
    """Remove the staging folders of `final` that a killed run left (their process no longer exists)."""
    for stale in final.parent.glob(f".{final.name}.partial-*"):
        pid = stale.name.rsplit(".partial-", 1)[1].split("-")[0]
        if pid.isdigit() and process_alive(int(pid)):
            continue
        shutil.rmtree(stale, ignore_errors=True)
        print(f"fedsim: note: removed {str(stale)!r}, left by a run that was killed", file=sys.stderr)


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


@contextmanager
def folder_lock(folder: Path, what: str) -> Iterator[None]:
    """Hold an exclusive lock on `folder` (a `.fedsim.lock` file, released by the kernel even on `kill -9`);
    a second holder is refused in one line instead of racing the first on the same files."""
    path = Path(folder) / ".fedsim.lock"
    handle = open(path, "a+")  # noqa: SIM115 - closed below
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UserError(f"another {what} is running on {str(folder)!r} (it holds {str(path)!r}); wait for "
                            f"it to finish or use another folder") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        try:
            yield
        finally:
            path.unlink(missing_ok=True)
    finally:
        handle.close()
