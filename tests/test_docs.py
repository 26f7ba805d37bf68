"""The repository's Markdown documents: every relative link resolves inside the clone; CLI.md names what
the registries hold."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "experiments" / "README.md"]
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")


def relative_links() -> list[tuple[Path, str]]:
    links = []
    for document in DOCUMENTS:
        for target in LINK.findall(document.read_text()):
            if not re.match(r"^[a-z][a-z0-9+.-]*:", target) and not target.startswith("#"):
                links.append((document, target))
    return links


LINKS = relative_links()


def test_the_documents_exist_and_link_to_each_other():
    assert all(d.is_file() for d in DOCUMENTS)
    assert {(ROOT / "README.md", "docs/CLI.md"), (ROOT / "README.md", "docs/architecture.md")} <= set(LINKS)


@pytest.mark.parametrize(("document", "target"), LINKS,
                         ids=[f"{d.relative_to(ROOT)}->{t}" for d, t in LINKS])
def test_relative_link_resolves_inside_the_clone(document, target):
    path = (document.parent / target.split("#")[0]).resolve()
    assert path.exists(), f"{document.relative_to(ROOT)} links to {target}, which does not exist"
    assert path.is_relative_to(ROOT), f"{document.relative_to(ROOT)} links outside the clone: {target}"


def test_cli_doc_names_every_auc_method_and_synthetic_score_set():
    from fedsim.evaluation.methods import METHODS
    from fedsim.evaluation.synthetic import SYNTHETIC

    text = (ROOT / "docs" / "CLI.md").read_text()
    for name in METHODS.names() + SYNTHETIC.names():
        assert f"`{name}`" in text, f"docs/CLI.md does not name {name!r}"
