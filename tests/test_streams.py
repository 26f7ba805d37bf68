"""RNG stream tags are named (fedsim.streams) and never collide."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

from fedsim.streams import NAMESPACES, AttackStream, AuditStream, Stream

ROOT = Path(__file__).resolve().parents[1]
CODE = ("fedsim", "attacks", "defenses", "experiments")
SEEDED = {"default_rng", "SeedSequence", "seeded_init"}  # calls that take a seed-sequence entropy list


def state(entropy: list[int]) -> tuple[int, ...]:
    return tuple(np.random.SeedSequence(entropy).generate_state(4))


@pytest.mark.parametrize("namespace", NAMESPACES, ids=lambda n: n.__name__)
def test_each_tag_names_one_purpose(namespace) -> None:
    values = [member.value for member in namespace]
    assert len(values) == len(set(values)), f"{namespace.__name__} reuses a tag: {values}"


def test_run_streams_are_distinct_even_with_sub_tags() -> None:
    """SeedSequence pads with zeros ([s, 40] == [s, 40, 0]): a sub-tagged stream must not equal a plain one.
    This is the collision the old ATTACK_SEED = 40 had with the label party's own-model stream."""
    seed = 7
    streams = {(tag.name,): state([seed, tag]) for tag in Stream}
    streams.update({(Stream.ATTACK.name, sub.name): state([seed, Stream.ATTACK, sub]) for sub in AttackStream})
    streams.update({(Stream.AUDIT.name, sub.name): state([seed, Stream.AUDIT, sub]) for sub in AuditStream})
    collisions = {}
    for name, value in streams.items():
        collisions.setdefault(value, []).append(name)
    clashes = [names for names in collisions.values() if len(names) > 1 and not _same_family(names)]
    assert not clashes, f"streams share a generator state: {clashes}"


def _same_family(names: list[tuple[str, ...]]) -> bool:
    """[s, ATTACK] and [s, ATTACK, 0] coincide by padding; only the sub-tagged form is ever drawn from."""
    return len({n[0] for n in names}) == 1


def _literal_tags(root: Path = ROOT) -> list[str]:
    found = []
    for folder in CODE:
        for path in sorted((root / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if not (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.List)):
                    continue
                func = node.func
                name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                if name in SEEDED and any(isinstance(e, ast.Constant) for e in node.args[0].elts[1:]):
                    found.append(f"{path.relative_to(root)}:{node.lineno}")
    return found


def test_no_call_site_writes_a_bare_tag() -> None:
    assert _literal_tags() == []


def test_the_check_sees_a_bare_tag(tmp_path) -> None:
    """The static check is not vacuous: a module with `default_rng([seed, 30])` is reported."""
    (tmp_path / "fedsim").mkdir()
    (tmp_path / "fedsim" / "bad.py").write_text("import numpy as np\nrng = np.random.default_rng([0, 30])\n")
    for folder in CODE[1:]:
        (tmp_path / folder).mkdir()
    assert _literal_tags(tmp_path) == ["fedsim/bad.py:2"]
