"""The attacker's view holds public facts only (issue 23 §1): no attack reads the seed or the run's config."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np
import pytest
from fedsim_fixtures import small_config

from fedsim.privacy.mechanisms import laplace_noise
from fedsim.rundir import load_party_view
from fedsim.streams import Stream, secret_key
from fedsim.training import train

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN_ATTRIBUTES = {"seed", "config"}  # the run's seed; the full TrainConfig (manifest.config, view.config)
FORBIDDEN_NAMES = {"TrainConfig", "load_truth", "load_dataset"}


def private_reads(root: Path) -> list[str]:
    """`file:line what` for each read of the seed or the full config in the attack modules under `root`."""
    found = []
    for path in sorted((root / "attacks").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            what = None
            if isinstance(node, ast.Attribute) and node.attr in FORBIDDEN_ATTRIBUTES:
                what = f".{node.attr}"
            elif isinstance(node, ast.Name) and node.id in FORBIDDEN_NAMES:
                what = node.id
            elif isinstance(node, ast.alias) and node.name.split(".")[-1] in FORBIDDEN_NAMES:
                what = f"import {node.name}"
            if what is not None:
                found.append(f"{path.relative_to(root)}:{getattr(node, 'lineno', 0)} {what}")
    return found


def test_no_attack_reads_the_seed_or_the_config() -> None:
    assert private_reads(ROOT) == []


def test_the_check_finds_a_private_read(tmp_path) -> None:
    (tmp_path / "attacks").mkdir()
    (tmp_path / "attacks" / "peek.py").write_text(
        "import numpy as np\n\ndef run(view):\n    return np.random.default_rng([view.manifest.config.seed, 30])\n")
    assert private_reads(tmp_path) == ["attacks/peek.py:4 .seed", "attacks/peek.py:4 .config"]


# --- a curious feature party replays the label party's Laplace noise from everything its view holds ---


SEED, LOW, HIGH, EPSILON = 17, -5.0, 35.0, 1.0


@pytest.fixture(scope="module")
def laplace_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("laplace") / "t"
    config = small_config(epochs=1, seed=SEED, label_defense="laplace", epsilon=EPSILON,
                          defense_params={"low": LOW, "high": HIGH})
    result = train(config, transcript_dir=folder)
    noise = result.label_party.targets.numpy().ravel() - np.clip(result.dataset.y_train, LOW, HIGH)
    return result, folder, noise


def _ints(value) -> set[int]:
    if isinstance(value, bool):
        return set()
    if isinstance(value, int | float) and float(value).is_integer() and value >= 0:  # seeds are >= 0
        return {int(value)}
    if isinstance(value, dict):
        return set().union(*map(_ints, value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*map(_ints, value)) if value else set()
    return set()


def _replay_correlation(entropy: list[int], noise: np.ndarray, scale: float) -> float:
    guess = laplace_noise(len(noise), scale, np.random.default_rng(entropy))
    return float(abs(np.corrcoef(guess, noise)[0, 1]))


def test_replaying_the_label_noise_from_the_view_gets_chance(laplace_run):
    result, folder, noise = laplace_run
    view = load_party_view(folder, 0)
    public = view.public.defense
    scale = (public.params["high"] - public.params["low"]) / public.epsilon  # public: the mechanism's law
    candidates = _ints(json.loads((folder / "manifest.json").read_text())) | {SEED}  # even the true seed
    assert len(candidates) > 5
    best = max(_replay_correlation([s, Stream.LABEL_MECHANISM], noise, scale) for s in candidates)
    assert best < 5 / np.sqrt(len(noise)), best  # |corr| of independent draws: about 1/sqrt(n)
    # even the seed with every training label but one (a party that guessed the seed from its split and knew
    # all other labels) does not rebuild the key
    labels = result.dataset.y_train.copy()
    labels[0] += 1.0
    near_key = secret_key(SEED, labels)
    assert _replay_correlation([near_key, Stream.LABEL_MECHANISM], noise, scale) < 5 / np.sqrt(len(noise))
    # the control: the label party's own key does regenerate its noise, so the replay itself is right
    key = secret_key(SEED, result.dataset.y_train)
    assert _replay_correlation([key, Stream.LABEL_MECHANISM], noise, scale) > 0.999
