"""Private AUC over Flower equals the in-process run for the same seed (Message API path and real engine)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fedsim.cli.app import main
from fedsim.evaluation import METHODS, run_auc
from fedsim.evaluation.driver import make_settings, run_in_process, split_clients
from fedsim.runtime.flower.auc_app import client_app, server_main
from fedsim.runtime.flower.direct import DirectGrid


def scored(n: int = 2000, seed: int = 5) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = (rng.random(n) < 0.3).astype(np.int8)
    return 1 / (1 + np.exp(-(rng.standard_normal(n) + labels))), labels


@pytest.mark.parametrize("method", ["exact", "naive_rr", "rr", "dpauc", "hist", "hist_gauss"])
@pytest.mark.parametrize(("clients", "split", "vertical"), [(4, "iid", False), (3, "score_sorted", False),
                                                            (1, "iid", True)])
def test_message_path_equals_in_process(method, clients, split, vertical) -> None:
    """Every method through the apps' messages (engine-free DirectGrid) gives the in-process estimates."""
    scores, labels = scored()
    settings = make_settings(method, None if method == "exact" else 1.0, None, None, 40)  # exact takes no epsilon
    parts = split_clients(scores, clients, split, seed=9)
    chosen = METHODS.get(method)
    data = [(None if vertical else scores[p], labels[p]) for p in parts]
    over_messages = server_main(DirectGrid(client_app(data), clients), chosen, settings, clients, 3, 9,
                                scores if vertical else None)
    _, in_process, first = run_in_process(chosen, settings, scores, labels, parts, 3, 9, show_progress=False)
    assert over_messages.estimates == in_process
    for received, sent in zip(over_messages.first_releases, first, strict=True):  # what --curves post-processes
        assert received.keys() == sent.keys()
        for key in sent:
            np.testing.assert_array_equal(received[key], sent[key])


def test_flower_simulation_equals_local() -> None:
    """The horizontal app in Flower's simulation engine (Ray) gives the in-process result, curves included
    (post-processed from the releases the server received over Flower)."""
    scores, labels = scored(1500)
    runs = [run_auc("hist", scores, labels, 1.0, clients=3, repeats=2, seed=4, runtime=runtime,
                    show_progress=False, curves="isotonic", truth=True) for runtime in ("flower", "local")]
    assert len(runs[0]["curves"]["tpr"]) == runs[0]["buckets"] + 1
    for run in runs:
        run.pop("runtime")
    assert runs[0] == runs[1]


@pytest.mark.slow
@pytest.mark.parametrize(("method", "extra"), [("dpauc", ["--clients", "4"]), ("rr", ["--setting", "vertical"]),
                                               ("hist", ["--setting", "vertical", "--curves"]),
                                               ("hist_gauss", ["--clients", "3", "--secure-aggregation",
                                                               "--bucketing", "variance", "--curves"])])
def test_cli_flower_equals_local(tmp_path, capsys, method, extra) -> None:
    scores, labels = scored(1000, 6)
    path = tmp_path / "s.csv"
    path.write_text("score,label\n" + "".join(f"{s},{y}\n" for s, y in zip(scores, labels, strict=True)))
    results = []
    for runtime in ("flower", "local"):
        assert main(["auc", "--data", str(path), "--method", method, "--epsilon", "2", "--runtime", runtime,
                     "--json", "--quiet", *extra]) == 0
        result = json.loads(capsys.readouterr().out)
        result.pop("runtime")
        results.append(result)
    assert results[0] == results[1]
