"""All-or-nothing writes and the one JSON conversion (fedsim.fileio)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from fedsim.errors import UserError
from fedsim.fileio import staged_directory, to_jsonable, write_atomic, write_json_atomic


def test_to_jsonable_converts_numpy_torch_tuples_paths_and_keys():
    value = {"a": np.float32(0.5), 3: (np.int64(2), np.arange(3)), "p": Path("x/y"), "t": torch.tensor([1.0]),
             "nested": [{"b": np.bool_(True)}], "plain": None}
    out = to_jsonable(value)
    assert out == {"a": 0.5, "3": [2, [0, 1, 2]], "p": "x/y", "t": [1.0], "nested": [{"b": True}], "plain": None}
    assert type(out["a"]) is float and type(out["3"][0]) is int and type(out["nested"][0]["b"]) is bool
    json.dumps(out)  # accepted as is


def test_to_jsonable_leaves_unknown_objects_for_json_to_reject():
    with pytest.raises(TypeError):
        json.dumps(to_jsonable({"x": object()}))


def test_write_atomic_keeps_the_old_file_and_no_temporary_when_the_writer_fails(tmp_path):
    path = tmp_path / "out.txt"
    path.write_text("old")

    def failing(p: Path) -> None:
        p.write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        write_atomic(path, failing)
    assert path.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]
    write_atomic(path, lambda p: p.write_text("new"))
    assert path.read_text() == "new" and sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_write_json_atomic_writes_sorted_indented_plain_json(tmp_path):
    write_json_atomic(tmp_path / "a.json", {"b": np.float64(1.5), "a": [np.int32(1)]})
    assert (tmp_path / "a.json").read_text() == '{\n  "a": [\n    1\n  ],\n  "b": 1.5\n}'


def test_staged_directory_leaves_nothing_on_error_and_refuses_to_overwrite(tmp_path):
    final = tmp_path / "run"
    with pytest.raises(RuntimeError), staged_directory(final) as staging:
        (staging / "f").write_text("x")
        raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []
    with staged_directory(final) as staging:
        (staging / "f").write_text("x")
    assert (final / "f").read_text() == "x" and [p.name for p in tmp_path.iterdir()] == ["run"]
    with pytest.raises(UserError, match="already exists; pass --overwrite"), staged_directory(final):
        pass
    with staged_directory(final, overwrite=True) as staging:
        (staging / "g").write_text("y")
    assert sorted(p.name for p in final.iterdir()) == ["g"]
