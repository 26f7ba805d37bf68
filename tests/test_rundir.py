"""The transcript folder's typed manifest: written and read in one place, one-line errors for bad folders."""

from __future__ import annotations

import json
import shutil

import pytest
from fedsim_fixtures import old_manifest, small_config

from fedsim.cli.app import main
from fedsim.errors import UserError
from fedsim.rundir import FORMAT_VERSION, TranscriptManifest, load_party_view
from fedsim.training import train


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    folder = tmp_path_factory.mktemp("run") / "t"
    result = train(small_config(rows=200, epochs=2), transcript_dir=folder)
    return result, folder


def test_the_manifest_round_trips_and_reaches_the_party_view(saved):
    result, folder = saved
    manifest = TranscriptManifest.read(folder)
    assert manifest == result.manifest()
    assert manifest.format == FORMAT_VERSION and manifest.public == result.public_facts()
    assert manifest.epochs_recorded == [0, 1] and manifest.loss == "mse" and manifest.parties == 2
    assert [s.features for s in manifest.shapes] == [b.dim for b in result.dataset.blocks]
    view = load_party_view(folder, 1)
    assert view.manifest == manifest and view.batch_size == result.config.batch_size
    assert result.party_view(1).manifest == manifest  # the in-memory view carries the same manifest


def _broken(tmp_path, folder, edit) -> str:
    """A copy of the manifest alone, edited; the error message TranscriptManifest.read gives for it."""
    copy = tmp_path / "copy"
    copy.mkdir()
    raw = json.loads((folder / "manifest.json").read_text())
    (copy / "manifest.json").write_text(edit(raw))
    with pytest.raises(UserError) as error:
        TranscriptManifest.read(copy)
    message = str(error.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize(("edit", "expected"), [
    (lambda raw: "{not json", "corrupt transcript manifest"),
    (lambda raw: "[]", "no format version"),
    (lambda raw: json.dumps({**raw, "format": FORMAT_VERSION + 1}), "newer than this fedsim reads"),
    (lambda raw: json.dumps({**raw, "format": 0}), "unsupported transcript format 0"),
    (lambda raw: json.dumps({k: v for k, v in raw.items() if k != "task"}), "task: Field required"),
    (lambda raw: json.dumps({**raw, "loss": "hinge"}), "corrupt transcript manifest"),
    (lambda raw: json.dumps({**raw, "public": {**raw["public"], "epochs": 0}}), "public.epochs"),
])
def test_a_bad_manifest_is_one_clear_line(tmp_path, saved, edit, expected):
    assert expected in _broken(tmp_path, saved[1], edit)


def test_no_seed_or_private_setting_reaches_the_view(saved):
    result, folder = saved
    raw = json.loads((folder / "manifest.json").read_text())
    text = json.dumps(raw)
    assert "seed" not in text and "config" not in raw and "top_hidden" not in text and "lr" not in raw["public"]
    for view in (load_party_view(folder, 0), result.party_view(0)):
        assert not _finds_seed(view), "the party view exposes the seed"


def _finds_seed(view) -> bool:
    """Whether `seed` is reachable as an attribute or key anywhere in the view's settings."""
    dumped = json.dumps(view.manifest.model_dump(mode="json"))
    return "seed" in dumped or hasattr(view, "seed") or hasattr(view.manifest, "config")


@pytest.mark.parametrize("version", [1, 2])
def test_an_older_folder_loads_with_the_seed_dropped(tmp_path, saved, version):
    result, folder = saved
    copy = tmp_path / "old"
    shutil.copytree(folder, copy)
    raw = json.loads((copy / "manifest.json").read_text())
    (copy / "manifest.json").write_text(json.dumps(old_manifest(raw, result.config.model_copy(update={"seed": 1234}),
                                                                version)))
    view = load_party_view(copy, 1)
    assert view.public == result.public_facts() and not _finds_seed(view)
    assert view.manifest.format == FORMAT_VERSION


def test_missing_folder_and_missing_manifest(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        TranscriptManifest.read(tmp_path / "nope")
    with pytest.raises(UserError, match="manifest.json is missing"):
        TranscriptManifest.read(tmp_path)


@pytest.mark.parametrize("content", [b"", b"garbage"])
def test_a_corrupt_bottom_model_is_a_user_error(tmp_path, saved, content):
    copy = tmp_path / "t"
    shutil.copytree(saved[1], copy)
    (copy / "party_0" / "bottom_model.pt").write_bytes(content)
    with pytest.raises(UserError, match="corrupt transcript directory"):
        load_party_view(copy, 0)


def test_the_cli_refuses_a_newer_format_with_exit_2(tmp_path, saved, capsys):
    copy = tmp_path / "t"
    shutil.copytree(saved[1], copy)
    raw = json.loads((copy / "manifest.json").read_text())
    (copy / "manifest.json").write_text(json.dumps({**raw, "format": FORMAT_VERSION + 1}))
    capsys.readouterr()
    assert main(["attack", "--transcript", str(copy), "--attack", "mean", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "newer than this fedsim reads" in err
