"""Faults and bad input (issue 21): diverged training, damaged transcripts, oversized counts, strict JSON,
clean-up. Every case is one line on stderr and exit code 2, never a traceback."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fedsim_fixtures import small_config

from fedsim import limits
from fedsim.audit.auc import audit_auc
from fedsim.cli.app import main
from fedsim.cli.common import emit_json
from fedsim.errors import UserError
from fedsim.evaluation.multiclass import run_multiclass_auc
from fedsim.experiments.cells import run_cell
from fedsim.fileio import folder_lock
from fedsim.rundir import load_party_view, load_truth
from fedsim.training import train


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(capsys, *args: str) -> str:
    """Run the CLI, expect exit 2 and exactly one `fedsim: error:` line (a progress bar may precede it)."""
    code, _, err = run(capsys, *args)
    lines = [line for line in err.splitlines() if line.startswith("fedsim: error:")]
    assert code == 2, err
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.mark.parametrize("command", [["train"], ["audit", "train", "--canaries", "20"]])
def test_a_diverged_run_is_one_line_with_its_step(capsys, tmp_path, command):
    line = one_line_error(capsys, *command, "--lr", "1e30", "--epochs", "1", "--quiet")
    assert "diverged" in line and "epoch 0 step 1" in line and "--lr" in line


def test_a_diverged_run_leaves_no_transcript(capsys, tmp_path):
    out = tmp_path / "t"
    one_line_error(capsys, "train", "--lr", "1e30", "--epochs", "1", "--transcript", str(out), "--quiet")
    assert not list(tmp_path.iterdir())


def test_divergence_is_caught_on_the_unfused_path_too():
    """A gradient defence and the label party's own block take `LabelParty.train_step`, not the fused step."""
    with pytest.raises(UserError, match="diverged"):
        train(small_config(lr=1e30, label_party_features=1), record=False)


def test_a_diverged_bench_cell_is_a_failed_cell_with_the_reason():
    config = {"train": small_config(lr=1e30).model_dump(mode="json"), "attacks": []}
    record = run_cell("leakage", config, {})
    assert record["status"] == "failed" and "training diverged" in record["error"]


# --- damaged transcripts -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def transcript(tmp_path_factory):
    folder = tmp_path_factory.mktemp("faults") / "t"
    train(small_config(rows=200, epochs=3, record_last_epochs=2), transcript_dir=folder)
    return folder


def rewrite(path: Path, change) -> None:
    np.save(path, change(np.load(path)))


def edit_manifest(folder: Path, change) -> None:
    path = folder / "manifest.json"
    path.write_text(json.dumps(change(json.loads(path.read_text()))))


def with_nan(a):
    a = a.astype(np.float32)
    a[3, 0] = np.nan
    return a


def with_inf(a):
    a = a.astype(np.float32)
    a[0, 0] = -np.inf
    return a


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


EPOCH = "party_0/epoch_0002"
# (what is damaged, how, the problem named without checksums). With checksums the file is refused as changed.
DAMAGES = {
    "nan_embeddings": (f"{EPOCH}/embeddings.npy", lambda p: rewrite(p, with_nan), "non-finite"),
    "inf_gradients": (f"{EPOCH}/gradients.npy", lambda p: rewrite(p, with_inf), "non-finite"),
    "inf_features": ("party_0/features.npy", lambda p: rewrite(p, with_inf), "non-finite"),
    "features_rows": ("party_0/features.npy", lambda p: rewrite(p, lambda a: a[:-5]), "rows"),
    "features_columns": ("party_0/features.npy", lambda p: rewrite(p, lambda a: a[:, :-1]), "columns"),
    "float_steps": (f"{EPOCH}/steps.npy", lambda p: rewrite(p, lambda a: a + 0.5), "expected integers"),
    "unordered_steps": (f"{EPOCH}/steps.npy", lambda p: rewrite(p, lambda a: a[::-1].copy()), "not in order"),
    "foreign_ids": (f"{EPOCH}/batch_ids.npy", lambda p: rewrite(p, lambda a: a + 10**6), "not in sample_ids"),
    "embedding_dim": (f"{EPOCH}/embeddings.npy", lambda p: rewrite(p, lambda a: a[:, :2]), "columns"),
    "gradient_rows": (f"{EPOCH}/gradients.npy", lambda p: rewrite(p, lambda a: a[:-1]), "rows"),
    "truncated_npy": (f"{EPOCH}/embeddings.npy", truncate, "corrupt transcript"),
    "deleted_ids": ("party_0/sample_ids.npy", lambda p: p.unlink(), "sample_ids.npy"),
    "deleted_last_epoch": (EPOCH, shutil.rmtree, "epochs [1]"),
    "garbage_model": ("party_0/bottom_model.pt", lambda p: p.write_bytes(b"garbage"), "corrupt transcript"),
}


@pytest.mark.parametrize("checksums", [True, False], ids=["checksums", "old-folder"])
@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_a_damaged_transcript_is_one_line(capsys, tmp_path, transcript, damage, checksums):
    copy = tmp_path / "t"
    shutil.copytree(transcript, copy)
    where, change, problem = DAMAGES[damage]
    change(copy / where)
    if not checksums:  # a folder written before format 4, or one whose manifest was rewritten
        edit_manifest(copy, lambda raw: {k: v for k, v in raw.items() if k != "files"})
    line = one_line_error(capsys, "attack", "--transcript", str(copy), "--attack", "mean", "--quiet")
    named = Path(where).name in line or f"{Path(where).parent.name}'" in line  # the file, or its folder
    caught_as_changed = checksums and any(w in line for w in ("checksum", "missing", "manifest records"))
    assert named and (caught_as_changed or problem in line), line


MANIFEST_DAMAGES = {
    "more_parties": (lambda raw: {**raw, "parties": 3}, "parties"),
    "wrong_n_train": (lambda raw: {**raw, "n_train": raw["n_train"] + 1}, "n_train"),
    "extra_epoch": (lambda raw: {**raw, "epochs_recorded": [0, 1, 2]}, "epochs"),
    "wrong_features": (lambda raw: {**raw, "shapes": [{**s, "features": s["features"] + 1} for s in raw["shapes"]]},
                       "columns"),
    "wrong_embedding_dim": (lambda raw: {**raw, "shapes": [{**s, "embedding_dim": 9} for s in raw["shapes"]]},
                            "columns"),
    "bad_files_entry": (lambda raw: {**raw, "files": {"x": {"sha256": 1}}}, "files"),
}


@pytest.mark.parametrize("damage", sorted(MANIFEST_DAMAGES))
def test_a_manifest_that_contradicts_the_arrays_is_one_line(capsys, tmp_path, transcript, damage):
    copy = tmp_path / "t"
    shutil.copytree(transcript, copy)
    change, problem = MANIFEST_DAMAGES[damage]
    edit_manifest(copy, change)
    line = one_line_error(capsys, "attack", "--transcript", str(copy), "--attack", "mean", "--quiet")
    assert problem in line, line


@pytest.mark.parametrize("checksums", [True, False], ids=["checksums", "old-folder"])
def test_a_truncated_truth_file_is_one_line(capsys, tmp_path, transcript, checksums):
    copy = tmp_path / "t"
    shutil.copytree(transcript, copy)
    truncate(copy / "truth" / "labels.npz")
    if not checksums:
        edit_manifest(copy, lambda raw: {k: v for k, v in raw.items() if k != "files"})
    line = one_line_error(capsys, "attack", "--transcript", str(copy), "--attack", "mean", "--quiet")
    assert "labels.npz" in line, line


def test_an_undamaged_transcript_still_loads(transcript):
    view = load_party_view(transcript, 0)
    assert view.transcript.epoch_numbers == [1, 2] and len(load_truth(transcript)["y_train"]) == 160


# --- resource guards -----------------------------------------------------------------------------------------

def test_a_billion_auc_canaries_are_refused_in_under_a_second(capsys):
    start = time.perf_counter()
    with pytest.raises(UserError, match=r"--canaries 1000000000 needs about .* GiB"):
        audit_auc("rr", np.linspace(0, 1, 100), np.arange(100) % 2, 1.0, canaries=10**9)
    assert time.perf_counter() - start < 1.0


def test_oversized_synthetic_rows_are_refused_before_allocation(capsys):
    line = one_line_error(capsys, "train", "--dataset", "synthetic_regression", "--rows", str(10**11), "--quiet")
    assert "--rows 100000000000 needs about" in line and "at most" in line


def test_transcripts_that_do_not_fit_in_memory_are_refused(capsys, tmp_path, monkeypatch):
    monkeypatch.setattr(limits, "free_memory", lambda: 1 << 20)  # 1 MiB free: 200 rows x 3 epochs do not fit
    line = one_line_error(capsys, "train", "--dataset", "synthetic_regression", "--rows", "2000", "--epochs", "3",
                          "--transcript", str(tmp_path / "t"), "--quiet")
    assert "--epochs 3 needs about" in line and "--stream" in line
    assert not list(tmp_path.iterdir())


AUC = ("auc", "--synthetic", "breast_cancer", "--epsilon", "1", "--quiet")  # 285 scores, 285 distinct


@pytest.mark.parametrize("args, free, named", [
    (("--method", "hist", "--repeats", str(10**12)), None, "--repeats 1000000000000 needs about"),
    (("--method", "dpauc", "--thresholds", str(10**12)), None, "--thresholds 1000000000000 needs about"),
    (("--method", "hist", "--clients", "280"), 1 << 20, "--clients 280 needs about"),
    (("--method", "hist", "--clients", "200", "--secure-aggregation", "--buckets", "1000"), 1 << 20,
     "dense counts over 285 buckets per client"),
], ids=["repeats", "thresholds", "clients", "clients_x_buckets"])
def test_auc_counts_that_do_not_fit_are_refused_at_once(capsys, monkeypatch, args, free, named):
    if free is not None:  # a small machine: 512 KiB to spare, so counts this data allows do not fit
        monkeypatch.setattr(limits, "free_memory", lambda: free)
    start = time.perf_counter()
    line = one_line_error(capsys, *AUC, *args)
    assert named in line and "at most" in line and time.perf_counter() - start < 5


def test_multiclass_repeats_are_refused_at_once():
    scores = np.random.default_rng(0).random((60, 3))
    with pytest.raises(UserError, match="--repeats 1000000000000 needs about"):
        run_multiclass_auc("hist", scores, np.arange(60) % 3, ["a", "b", "c"], 1.0, repeats=10**12)


def test_audit_auc_clients_that_do_not_fit_are_refused(monkeypatch):
    monkeypatch.setattr(limits, "free_memory", lambda: 1 << 20)
    with pytest.raises(UserError, match="--clients 280 needs about"):
        audit_auc("hist", np.linspace(0, 1, 300), np.arange(300) % 2, 1.0, clients=280, canaries=10)


def test_a_grid_of_too_many_cells_is_refused_before_expansion(capsys, tmp_path):
    many = list(range(2000))
    grid = tmp_path / "huge.toml"
    grid.write_text(f'name = "huge"\n[auc]\nsources = ["breast_cancer"]\nmethods = ["rr", "hist"]\n'
                    f"epsilons = {[1.0 + i for i in many]}\nclients = {many[1:]}\nseeds = {many}\n")
    start = time.perf_counter()
    line = one_line_error(capsys, "bench", str(grid), "--out", str(tmp_path / "out"), "--quiet")
    assert "a grid of 15992000000 cells needs about" in line and time.perf_counter() - start < 10
    assert not (tmp_path / "out").exists()


# --- a damaged results folder under `fedsim report` -----------------------------------------------------------

@pytest.fixture(scope="module")
def bench_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("bench")
    grid = root / "grid.toml"
    grid.write_text('name = "a"\n[auc]\nsources = ["breast_cancer"]\nmethods = ["rr"]\nepsilons = [1.0]\n'
                    "repeats = 2\n")
    assert main(["bench", str(grid), "--out", str(root / "out"), "--quiet", "--workers", "1"]) == 0
    return root / "out"


def table_edit(change):
    def damage(folder: Path) -> None:
        path = folder / "results.parquet"
        change(pd.read_parquet(path)).to_parquet(path)
    return damage


def flip_bytes(folder: Path) -> None:
    path = folder / "results.parquet"
    data = bytearray(path.read_bytes())
    for i in np.random.default_rng(0).integers(0, len(data), 50):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


REPORT_DAMAGES = {  # how the folder is damaged, what the line says
    "truncated": (lambda f: truncate(f / "results.parquet"), "not a readable results table"),
    "empty": (lambda f: (f / "results.parquet").write_bytes(b""), "not a readable results table"),
    "text": (lambda f: (f / "results.parquet").write_text("kind,cell\n"), "not a readable results table"),
    "flipped_bytes": (flip_bytes, "not a readable results table"),
    "other_table": (lambda f: pd.DataFrame({"x": [1]}).to_parquet(f / "results.parquet"), "lack 'kind'"),
    "no_rows": (table_edit(lambda t: t.iloc[:0]), "has no rows"),
    "bad_status": (table_edit(lambda t: t.assign(status="maybe")), "column 'status' holds 'maybe'"),
    "bad_kind": (table_edit(lambda t: t.assign(kind="zzz")), "column 'kind' holds 'zzz'"),
    "missing_column": (table_edit(lambda t: t.drop(columns=["exact"])), "auc rows lack 'exact'"),
    "text_numbers": (table_edit(lambda t: t.assign(rmse="x")), "column 'rmse' of its auc rows"),
    "infinite": (table_edit(lambda t: t.assign(n=np.inf)), "column 'n' of its auc rows"),
    "plots_is_a_file": (lambda f: (f / "plots").write_text("x"), "is in the way"),
    "report_is_a_folder": (lambda f: (f / "report.md").mkdir(), "is in the way"),
}


@pytest.mark.parametrize("damage", sorted(REPORT_DAMAGES))
def test_a_damaged_results_folder_is_one_line(capsys, tmp_path, bench_folder, damage):
    folder = tmp_path / "out"
    shutil.copytree(bench_folder, folder)
    change, problem = REPORT_DAMAGES[damage]
    change(folder)
    line = one_line_error(capsys, "report", str(folder))
    assert problem in line and str(folder) in line, line


def test_a_report_survives_junk_beside_the_table(capsys, tmp_path, bench_folder):
    """A grid.toml that is not text, junk cell files and one release per cell (no RMSE to plot) still report."""
    folder = tmp_path / "out"
    shutil.copytree(bench_folder, folder)
    (folder / "grid.toml").write_bytes(b"\xff\xfe\x00junk")
    (folder / "cells" / "junk.json").write_bytes(b"\xff")
    table_edit(lambda t: t.assign(repeats=1, rmse=np.nan, bias=np.nan, std=np.nan, ci_coverage=np.nan))(folder)
    code, _, err = run(capsys, "report", str(folder))
    assert code == 0 and "Traceback" not in err and (folder / "report.md").is_file()


# --- strict JSON, clean-up -----------------------------------------------------------------------------------

def test_json_output_is_strict(capsys):
    emit_json({"auc": float("nan"), "bounds": [float("-inf"), np.float64("inf")], "n": np.int64(3), "x": 0.5})
    text = capsys.readouterr().out

    def refuse(token):
        raise AssertionError(f"non-strict token {token}")

    assert json.loads(text, parse_constant=refuse) == {"auc": None, "bounds": [None, None], "n": 3, "x": 0.5}


def test_a_stale_staging_folder_is_swept_with_a_note(capsys, tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f".t.partial-{int(dead.stdout)}-abcd1234"
    (stale / "party_0").mkdir(parents=True)
    alive = tmp_path / f".t.partial-{os.getpid()}-abcd1234"  # a running writer's folder is left alone
    alive.mkdir()
    code, _, err = run(capsys, "train", "--epochs", "1", "--transcript", str(tmp_path / "t"), "--quiet")
    assert code == 0 and not stale.exists() and alive.exists() and "left by a run that was killed" in err


def test_sigterm_removes_the_staging_folder(tmp_path):
    process = subprocess.Popen([sys.executable, "-m", "fedsim", "train", "--dataset", "synthetic_regression",
                                "--rows", "20000", "--epochs", "200", "--transcript", str(tmp_path / "t"),
                                "--stream", "--quiet"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob(".t.partial-*/party_0/epoch_*")):
        assert process.poll() is None and time.monotonic() < deadline, "training never started"
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130 and "Traceback" not in err  # 130: interrupted, as after ctrl-C
    assert not list(tmp_path.iterdir())


def test_a_second_runner_on_a_grid_folder_is_refused(tmp_path):
    refused = pytest.raises(UserError, match="another fedsim bench is running")
    with folder_lock(tmp_path, "fedsim bench"), refused, folder_lock(tmp_path, "fedsim bench"):
        pass
    with folder_lock(tmp_path, "fedsim bench"):  # released: the next runner gets it
        pass
    assert not list(tmp_path.iterdir())
