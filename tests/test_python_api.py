"""The Python API (fedsim.api): its docstring examples, and every code block of docs/python-api.md and
docs/tutorial.md, run in order as a reader would."""

from __future__ import annotations

import doctest
import re
from pathlib import Path

import pytest

import fedsim
import fedsim.api
import fedsim.audit.api
from fedsim.errors import UserError

DOCS = Path(__file__).resolve().parents[1] / "docs"


def code_blocks(page: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", (DOCS / page).read_text(), re.S)


@pytest.mark.parametrize("module", [fedsim.api, fedsim.audit.api], ids=lambda m: m.__name__)
def test_docstring_examples(module, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_every_api_function_documents_args_returns_examples():
    for name in ("train", "attack", "audit", "evaluate_auc", "run_grid"):
        doc = getattr(fedsim.api, name).__doc__  # fedsim.audit may hold the (callable) package
        assert all(part in doc for part in ("Args:", "Returns:", "Examples:")), name


@pytest.mark.parametrize("page", ["python-api.md", "tutorial.md"])
def test_docs_code_blocks_run(page, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    blocks = code_blocks(page)
    assert blocks, f"no python blocks in {page}"
    namespace: dict = {}
    for block in blocks:  # one namespace: later blocks use earlier results, as in the page
        exec(compile(block, f"docs/{page}", "exec"), namespace)
    assert capsys.readouterr().out.strip()


def test_mistakes_are_one_line_user_errors():
    with pytest.raises(UserError, match="epochs"):
        fedsim.train(dataset="diabetes", epochs=0)
    with pytest.raises(UserError, match="not both"):
        fedsim.train(fedsim.TrainConfig(), epochs=2)
    with pytest.raises(AttributeError, match="no attribute 'nonexistent'"):
        fedsim.nonexistent  # noqa: B018
