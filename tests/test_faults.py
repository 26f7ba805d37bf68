"""Faults and bad input (issue 21): diverged training, damaged transcripts, oversized counts, strict JSON,
clean-up. Every case is one line on stderr and exit code 2, never a traceback."""

from __future__ import annotations

import pytest
from fedsim_fixtures import small_config

from fedsim.cli.app import main
from fedsim.errors import UserError
from fedsim.experiments.cells import run_cell
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
