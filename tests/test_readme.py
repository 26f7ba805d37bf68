"""The README's command examples run in order, as written, on a fresh clone.

The commands are the `fedsim ...` lines of the README's ```bash / ```sh / ```shell / ```console blocks, in
order (backslash continuations joined, `&&` chains split; other programs such as pip and pytest are left
out). The fast test parses every command against the real CLI (the command and its flags exist, values have
the right types) and checks that every path into the repository exists. The slow test runs them one after
another in a temporary folder holding the clone's tracked top-level entries (symlinked), so output folders
start empty, and checks exit code 0 and, with --json, one JSON object on stdout. A command whose comment
says `# long` (a benchmark grid) runs with the test's tiny grid in place of its GRID argument.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from fedsim.cli.app import COMMANDS as CLI_COMMANDS
from fedsim.cli.app import load_command

ROOT = Path(__file__).resolve().parents[1]
FENCE = re.compile(r"^```(bash|sh|shell|console)[ \t]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
LONG = re.compile(r"\s#\s*long\b")
TINY_GRID = """\
name = "tiny"
[leakage]
datasets = ["diabetes"]
parties = [2]
seeds = [0]
attacks = ["mean"]
[leakage.training]
epochs = 1
[[leakage.defenses]]
"""


@dataclass(frozen=True)
class Command:
    args: list[str]  # after "fedsim"
    long: bool
    line: str


def readme_commands(text: str) -> list[Command]:
    """Every `fedsim` command of the README's shell blocks, in order."""
    commands = []
    for block in FENCE.finditer(text):
        console = block.group(1) == "console"
        lines = block.group(2).replace("\\\n", " ").splitlines()
        for line in lines:
            if console:
                if not line.startswith("$ "):
                    continue  # output, not a command
                line = line[2:]
            tokens = shlex.split(line, comments=True)
            long = bool(LONG.search(line))
            while tokens:
                cut = tokens.index("&&") if "&&" in tokens else len(tokens)
                part, tokens = tokens[:cut], tokens[cut + 1:]
                if part and part[0] == "fedsim":
                    commands.append(Command(part[1:], long, line.strip()))
    return commands


def guide_pages(readme: str) -> list[Path]:
    """The docs pages linked from the README's "Where to go next" list, in order: the tour goes on there."""
    section = readme.split("## Where to go next", 1)[1].split("\n## ", 1)[0]
    return [ROOT / link for link in re.findall(r"^- \[[^\]]+\]\((docs/[\w-]+\.md)\)", section, re.MULTILINE)]


README = (ROOT / "README.md").read_text()
GUIDE = guide_pages(README)
COMMANDS = readme_commands("\n".join([README, *(page.read_text() for page in GUIDE)]))


def test_the_guide_pages_are_found():
    assert len(GUIDE) >= 6 and all(page.is_file() for page in GUIDE), GUIDE


def test_the_readme_has_command_examples():
    names = [c.args[0] for c in COMMANDS]
    assert {"demo", "datasets", "train", "attack", "auc", "bench", "report"} <= set(names), names


@pytest.mark.parametrize("command", COMMANDS, ids=[" ".join(c.args)[:60] for c in COMMANDS])
def test_readme_command_parses_and_its_repository_paths_exist(command):
    name, *args = command.args
    assert name in CLI_COMMANDS, f"no command {name!r}: {command.line}"
    load_command(name).make_context(name, list(args))  # raises a UsageError on a bad flag or value
    tracked = {p.name for p in ROOT.iterdir()} - {"out", "runs", "fedsim-demo"}
    for arg in args:
        if "/" in arg and not arg.startswith("-") and arg.split("/")[0] in tracked:
            assert (ROOT / arg).exists(), f"{arg} does not exist in the repository: {command.line}"


def tracked_top_level() -> list[str]:
    try:
        files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("needs a git clone to know which files a fresh clone has")
    return sorted({line.split("/")[0] for line in files.splitlines() if line})


def fedsim_executable() -> list[str]:
    script = Path(sys.executable).with_name("fedsim")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "fedsim"]


@pytest.mark.slow
def test_readme_commands_run_in_order_on_a_fresh_clone(tmp_path):
    clone = tmp_path / "clone"
    clone.mkdir()
    for name in tracked_top_level():
        (clone / name).symlink_to(ROOT / name)
    (tmp_path / "tiny.toml").write_text(TINY_GRID)
    for command in COMMANDS:
        args = list(command.args)
        if command.long and args[0] == "bench":
            args[1] = str(tmp_path / "tiny.toml")
        done = subprocess.run([*fedsim_executable(), *args], cwd=clone, capture_output=True, text=True,
                              timeout=900)
        assert done.returncode == 0, f"{command.line}\n{done.stderr[-3000:]}"
        if "--json" in args:
            assert isinstance(json.loads(done.stdout), dict), command.line
