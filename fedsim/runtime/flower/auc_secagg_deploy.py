"""The secure-aggregated private AUC as a deployable Flower app: `flwr run fedsim/deploy/secure-auc CONNECTION`.

The same protocol as the simulation (`auc_secagg_app`: one score round, then one SecAgg+ run per repeat, the
same `server_main` and client code), but each SuperNode reads its own file, named in its node config:
`flower-supernode --node-config "partition-id=K data=PATH score-col=score label-col=label"`. Its labels never
leave it; the ServerApp learns every client's scores (public in label DP, and it needs them for the bucket
edges) and, per repeat, only the SecAgg+ sum of the clients' positive counts + noise shares.

The ServerApp reads its settings from the run config ([tool.flwr.app.config] of the app folder, or `-c`):
the `fedsim auc` settings method, epsilon, delta, buckets, clients (the number of SuperNodes, partition-ids
0..M-1), min-clients, repeats, seed, curves and projection (`curves = true` adds the `fedsim auc --curves`
block, post-processed from release 0's SecAgg+ sum at no extra epsilon), checked as `fedsim auc
--secure-aggregation` checks them; and the
runtime keys `result` (the JSON file to write, private) and `timeout` (seconds per round). A bad setting, a
node without its file or columns, or too few clients stop the run with one line, also written to `result`
as {"error": ...}.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
from flwr.app import Context
from flwr.serverapp import Grid, ServerApp

from fedsim.config import EvalConfig, config_from_run_config
from fedsim.errors import PartyError, UserError, check, first_line
from fedsim.evaluation.curves import curve_rng, curves_report, secure_count_release
from fedsim.evaluation.driver import check_counts, make_settings, summarise
from fedsim.evaluation.intervals import unit_estimate, unit_interval
from fedsim.evaluation.secure_aggregation import check_secure
from fedsim.fileio import strict_json, write_json_atomic
from fedsim.runtime.flower.auc_app import TIMEOUT_S
from fedsim.runtime.flower.auc_secagg_app import secagg_client, server_main

SETTINGS = ("method", "epsilon", "delta", "buckets", "bucketing", "clients", "min-clients", "repeats", "seed", "curves",
            "projection")
RUNTIME_KEYS = ("result", "timeout")


def node_scores(node_config: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """This SuperNode's scores and 0/1 labels, from the file its node config names (`data=`, `score-col=`,
    `label-col=`); a one-line `UserError` for a missing key, file or column, or values that are not scores
    and 0/1 labels. One client may hold a single class (the AUC is over all clients)."""
    from fedsim.data.files import read_frame  # pandas: only on the client

    path = str(node_config.get("data", ""))
    check(path != "", "this SuperNode has no data file: start it with --node-config 'partition-id=K "
                      "data=PATH' (optional: score-col=score label-col=label)")
    score_col, label_col = str(node_config.get("score-col", "score")), str(node_config.get("label-col", "label"))
    table = read_frame(path)
    for key, column in (("score-col", score_col), ("label-col", label_col)):
        check(column in table.columns, f"node config {key}={column!r} is not a column of {path!r}; columns: "
                                       f"{', '.join(map(str, table.columns))}")
    try:
        scores, labels = table[score_col].to_numpy(np.float64), table[label_col].to_numpy(np.float64)
    except (TypeError, ValueError):
        raise UserError(f"{path!r}: scores and labels must be numbers (labels 0 or 1)") from None
    check(bool(np.isfinite(scores).all()), f"{path!r}: scores must be finite (found NaN or inf)")
    check(bool(((labels == 0) | (labels == 1)).all()), f"{path!r}: labels must be 0 or 1 (found other values)")
    return scores, labels.astype(np.int8)


def auc_result(grid: Grid, context: Context) -> dict[str, Any]:
    """Check the run config, run the protocol, and return the `fedsim auc --secure-aggregation --json` keys
    that apply (no exact AUC, bias or coverage: the server never holds the labels)."""
    run_config = dict(context.run_config)
    unknown = sorted(set(run_config) - set(SETTINGS) - set(RUNTIME_KEYS))
    check(not unknown, f"run config key {unknown[0] if unknown else ''!r} is not a setting of the secure AUC app; "
                       f"keys: {', '.join(SETTINGS + RUNTIME_KEYS)}")
    check(run_config.get("clients", "") != "", "clients= is required: the number of SuperNodes (partition-ids "
                                               "0..M-1, M >= 2)")
    config = config_from_run_config(EvalConfig, {k: v for k, v in run_config.items() if k in SETTINGS},
                                    secure_aggregation=True)
    settings = make_settings(config.method, config.epsilon, config.delta, config.buckets, config.thresholds,
                             bucketing=config.bucketing)
    check_secure(config.method, config.clients, config.min_clients)
    check_counts(config.repeats, config.clients)
    check(config.curves or config.projection == EvalConfig.model_fields["projection"].default,
          "projection= needs curves = true")
    timeout = float(run_config.get("timeout") or TIMEOUT_S)
    check(timeout > 0, f"timeout must be > 0 seconds, got {timeout:g}")
    epsilon = math.inf if settings.epsilon is None else settings.epsilon  # make_settings: inf = no noise
    run = server_main(grid, context, config.method, epsilon, settings.delta, settings.buckets,
                      config.clients, config.repeats, config.seed, config.min_clients, timeout,
                      bucketing=settings.bucketing)
    first = run.estimates[0]
    result: dict[str, Any] = {
        "method": config.method, "epsilon": epsilon, "delta": settings.delta,
        "n": int(run.first_sizes.sum()), "estimate": unit_estimate(first.estimate), "estimate_raw": first.estimate,
        "ci95": list(unit_interval(first.ci95)), "clients": config.clients, "setting": "horizontal",
        "runtime": "flwr run", "seed": config.seed, "repeats": config.repeats, **run.info(),
        "bucketing": settings.bucketing,
    }
    if config.repeats > 1:  # what needs no exact AUC
        spread = summarise(run.estimates, math.nan)
        result.update({k: spread[k] for k in ("mean", "std", "mean_raw")})
    if config.curves:  # what `fedsim auc --curves` prints, from the same sum (no exact curves: no labels here)
        result["curves"] = curves_report(secure_count_release(run), config.projection, curve_rng(config.seed, 0))
    return json.loads(strict_json(result))  # as `fedsim auc --json`: no noise (inf) and an infinite epsilon are null


def run_from_context(grid: Grid, context: Context) -> None:
    """Entry point of `flwr run fedsim/deploy/secure-auc`: the result JSON (private: it names the run's data), or
    {"error": one line} and the run fails."""
    target = str(context.run_config.get("result", ""))
    try:
        result = auc_result(grid, context)
    except (UserError, PartyError) as exc:
        if target:
            write_json_atomic(Path(target), {"error": first_line(exc)}, private=True)
        raise
    if target:
        write_json_atomic(Path(target), result, private=True)
    logging.getLogger("flwr").info("fedsim result: %s", json.dumps(result))


client_app = secagg_client(lambda context: node_scores(dict(context.node_config)))
server_app = ServerApp()
server_app.main()(run_from_context)
