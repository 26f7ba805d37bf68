"""The deployable secure AUC app (`fedsim/deploy/secure-auc`, `fedsim.runtime.flower.auc_secagg_deploy`): each
node reads its own scores file; the ServerApp writes the `fedsim auc --secure-aggregation` keys or one error
line. Here over engine-free messages (`CopyingGrid`); over real SuperLink/SuperNode processes in the slow test.
"""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from flwr.app import Context, RecordDict
from flwr.common.config import get_project_config
from flwr.supercore.object_ref import validate
from test_secure_aggregation import CopyingGrid, scored

from fedsim.errors import PartyError, UserError
from fedsim.evaluation.curves import curve_rng, curves_report, secure_count_release
from fedsim.evaluation.secure_aggregation import run_secure_local
from fedsim.fileio import strict_json
from fedsim.runtime.flower import auc_secagg_deploy
from fedsim.runtime.flower.auc_secagg_deploy import node_scores

APP = Path(__file__).resolve().parents[1] / "fedsim" / "deploy" / "secure-auc"


def score_files(folder: Path, clients: int, n: int = 1500) -> tuple[list[Path], np.ndarray, np.ndarray, list]:
    """One CSV of scores + labels per client (consecutive rows), and the in-process view: all scores, all
    labels, each file's rows as indices (partition order)."""
    scores, labels = scored(n)
    parts = np.array_split(np.arange(n), clients)
    files = []
    for k, rows in enumerate(parts):
        files.append(folder / f"client{k}.csv")
        pd.DataFrame({"score": scores[rows], "label": labels[rows], "other": k}).to_csv(files[-1], index=False)
    return files, scores, labels, parts


def run_app(files: list[Path], run_config: dict, changes: dict[int, dict] | None = None) -> Context:
    """The deploy ServerApp's entry point over `CopyingGrid` nodes whose node config names their file
    (`changes[k]`: node k's node-config entries changed after that)."""
    grid = CopyingGrid(auc_secagg_deploy.client_app, len(files))
    for k, path in enumerate(files):
        grid.contexts[k + 1].node_config.update({"data": str(path), **(changes or {}).get(k, {})})
    context = Context(run_id=0, node_id=0, node_config={}, state=RecordDict(), run_config=run_config)
    auc_secagg_deploy.run_from_context(grid, context)
    return context


def test_node_reads_its_own_file_and_refuses_a_missing_one(tmp_path) -> None:
    files, scores, labels, parts = score_files(tmp_path, 2, 200)
    got = node_scores({"partition-id": 1, "data": str(files[1])})
    np.testing.assert_array_equal(got[0], scores[parts[1]])
    np.testing.assert_array_equal(got[1], labels[parts[1]])
    renamed = pd.read_csv(files[0]).rename(columns={"score": "p", "label": "y"})
    renamed.to_csv(tmp_path / "renamed.csv", index=False)
    np.testing.assert_array_equal(node_scores({"data": str(tmp_path / "renamed.csv"), "score-col": "p",
                                               "label-col": "y"})[1], labels[parts[0]])
    with pytest.raises(UserError, match="no data file: start it with --node-config"):
        node_scores({"partition-id": 0})
    with pytest.raises(UserError, match="does not exist"):
        node_scores({"data": str(tmp_path / "absent.csv")})
    with pytest.raises(UserError, match="score-col='score' is not a column"):
        node_scores({"data": str(tmp_path / "renamed.csv")})
    pd.DataFrame({"score": [0.1, 0.2], "label": [0, 2]}).to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(UserError, match="labels must be 0 or 1"):
        node_scores({"data": str(tmp_path / "bad.csv")})


@pytest.mark.parametrize(("method", "delta", "repeats", "bucketing"), [("hist", "", 1, "mass"),
                                                                     ("hist_gauss", 1e-6, 2, "mass"),
                                                                     ("hist", "", 1, "variance")])
def test_app_equals_in_process_and_writes_private_json(tmp_path, method, delta, repeats, bucketing) -> None:
    files, scores, labels, parts = score_files(tmp_path, 3)
    result_file = tmp_path / "result.json"
    run_app(files, {"method": method, "epsilon": 1.0, "delta": delta, "clients": 3, "repeats": repeats,
                    "seed": 11, "result": str(result_file), "bucketing": bucketing})
    result = json.loads(result_file.read_text())
    local = run_secure_local(method, scores, labels, parts, 1.0, delta or None, None, repeats, 11,
                             bucketing=bucketing)
    assert result["bucketing"] == bucketing and result["buckets"] == local.public.edges.size
    assert result["estimate_raw"] == local.estimates[0].estimate  # the same integers, bit for bit
    assert result["ci95"] == [min(1.0, max(0.0, b)) for b in local.estimates[0].ci95]
    assert {k: result[k] for k in local.info()} == json.loads(json.dumps(local.info()))
    assert result["n"] == scores.size and result["clients"] == 3 and result["runtime"] == "flwr run"
    assert ("mean_raw" in result) == (repeats > 1) and "exact" not in result  # the server has no labels
    assert stat.S_IMODE(result_file.stat().st_mode) == 0o600


def test_app_writes_the_curves_of_release_0(tmp_path) -> None:
    """curves = true: the `fedsim auc --curves` block, computed by the same code from release 0's sum (equal to
    the in-process secure run's), without exact curves (the server has no labels); no curves by default."""
    files, scores, labels, parts = score_files(tmp_path, 3)
    result_file = tmp_path / "result.json"
    run_app(files, {"method": "hist", "epsilon": 1.0, "clients": 3, "seed": 11, "curves": True,
                    "projection": "isotonic", "result": str(result_file)})
    result = json.loads(result_file.read_text())
    local = run_secure_local("hist", scores, labels, parts, 1.0, None, None, 1, 11)
    expected = curves_report(secure_count_release(local), "isotonic", curve_rng(11, 0))
    assert result["curves"] == json.loads(strict_json(expected))
    assert result["curves"]["projection"] == "isotonic" and "exact" not in result["curves"]
    assert result["curves"]["auc_ci95"] == result["ci95"]  # the AUC of the same release
    run_app(files, {"method": "hist", "epsilon": 1.0, "clients": 3, "seed": 11, "result": str(result_file)})
    assert "curves" not in json.loads(result_file.read_text())


@pytest.mark.parametrize(("run_config", "changes", "needle"), [
    ({"method": "rr"}, None, "integer histogram"),
    ({"clients": 1}, None, "needs --clients >= 2"),
    ({"clients": ""}, None, "clients= is required"),
    ({"epsilon": -1.0}, None, "epsilon"),
    ({"clients": 4, "timeout": 0.5}, None, "only 3 of 4 Flower clients connected within 0.5 s"),
    ({"runtime": "flower"}, None, "'runtime' is not a setting of the secure AUC app"),
    ({"projection": "box"}, None, "projection= needs curves = true"),
    ({"curves": True, "plot": "c.png"}, None, "'plot' is not a setting of the secure AUC app"),
    ({}, {1: {"data": ""}}, "failed during the score round: .*no data file"),
    ({}, {2: {"label-col": "y"}}, "failed during the score round: .*label-col='y' is not a column"),
    ({}, {2: {"partition-id": 0}}, "two Flower clients hold partition-id 0"),
])
def test_bad_setups_are_one_line_in_the_result(tmp_path, run_config, changes, needle) -> None:
    files = score_files(tmp_path, 3, 300)[0]
    result_file = tmp_path / "result.json"
    with pytest.raises((UserError, PartyError), match=needle):
        run_app(files, {"method": "hist", "epsilon": 1.0, "clients": 3, "result": str(result_file), **run_config},
                changes)
    message = json.loads(result_file.read_text())["error"]
    assert "\n" not in message and re.search(needle, message)


def test_app_folder_is_a_flower_app_that_ships_no_code() -> None:
    """`flwr run` builds the FAB from the folder: its components resolve to fedsim in the environment, and the
    run-config keys are the settings the ServerApp reads."""
    config = get_project_config(APP)
    components = config["tool"]["flwr"]["app"]["components"]
    assert all(validate(ref, check_module=True, project_dir=APP) == (True, None) for ref in components.values())
    assert set(config["tool"]["flwr"]["app"]["config"]) == {*auc_secagg_deploy.SETTINGS,
                                                            *auc_secagg_deploy.RUNTIME_KEYS}
    assert sorted(p.name for p in APP.iterdir() if p.name != "__pycache__") == ["pyproject.toml"]


@pytest.mark.slow
def test_flwr_run_deploy_secure_auc_equals_in_process(tmp_path) -> None:
    """A SuperLink and 3 SuperNodes on loopback, each with its own CSV; `flwr run fedsim/deploy/secure-auc` gives
    `run_secure_local` on the joined files bit for bit, and with curves=true its curves. PYTHONPATH: the FAB
    carries no code, and this machine's `flwr` scripts may run another interpreter than the one fedsim is
    installed in."""
    from flower_deployment import ROOT, deployment, flower_env, flwr_run

    files, scores, labels, parts = score_files(tmp_path, 3)
    result_file = tmp_path / "result.json"
    nodes = {k: f"data='{path}'" for k, path in enumerate(files)}
    with flower_env(tmp_path) as env, deployment({**env, "PYTHONPATH": str(ROOT)}, 3, tmp_path,
                                                 node_configs=nodes) as deployed:
        flwr_run(deployed.env, "deploy", f"method='hist' epsilon=1.0 clients=3 seed=5 timeout=300.0 curves=true "
                                         f"result='{result_file}'", timeout=1200, app=APP,
                 output=tmp_path / "flwr_run.log")
        result = json.loads(result_file.read_text())
    assert "error" not in result, result
    local = run_secure_local("hist", scores, labels, parts, 1.0, None, None, 1, 5)
    assert result["estimate_raw"] == local.estimates[0].estimate
    assert result["curves"] == json.loads(strict_json(curves_report(secure_count_release(local), "isotonic",
                                                                    curve_rng(5, 0))))
    assert result["contributors"] == 3 and result["achieved_epsilon"] == 1.0
    assert stat.S_IMODE(result_file.stat().st_mode) == 0o600
