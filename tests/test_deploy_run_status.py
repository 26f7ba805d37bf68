"""`fedsim deploy run`: the pieces that need no deployment (the slow test in test_flower_deploy.py runs it)."""

from __future__ import annotations

import json

import pytest

from fedsim.cli.app import main
from fedsim.deploy.run_status import COMPLETED, RunOutcome, _last_json
from fedsim.errors import UserError


def test_flowers_pretty_printed_json_is_read_after_other_lines():
    text = "Loading project configuration...\n" + json.dumps({"success": True, "run-id": "42"}, indent=2) + "\n"
    assert _last_json(text, "flwr run") == {"success": True, "run-id": "42"}
    with pytest.raises(UserError, match="^flwr ls printed no JSON result: oops$"):
        _last_json("oops\n", "flwr ls")


def test_only_a_completed_run_is_ok():
    assert RunOutcome(1, COMPLETED, "").ok
    assert not RunOutcome(1, "finished:failed", "ServerApp raised").ok
    assert not RunOutcome(1, "finished:stopped", "").ok


def test_a_folder_that_is_no_flower_app_is_one_line(tmp_path, capsys):
    assert main(["deploy", "run", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"fedsim: error: {str(tmp_path)!r} is not a Flower app folder (no pyproject.toml)"]
