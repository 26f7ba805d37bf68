"""`fedsim auc`: the AUC of a score column under label DP (one release, or an evaluation over repeats)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from fedsim.cli.common import emit_json, new_console
from fedsim.cli.options import config_command
from fedsim.config import EvalConfig
from fedsim.errors import UserError, check

if TYPE_CHECKING:  # rich and numpy load when a command runs, not for --help
    import numpy as np
    from rich.console import Console


def read_scores(path: Path, score_col: str, label_col: str) -> tuple[np.ndarray, np.ndarray]:
    """Score and label columns of a CSV or Parquet file, with one-line errors for missing files/columns."""
    from fedsim.data.files import read_frame

    table = read_frame(path)
    columns = ", ".join(map(str, table.columns))
    for flag, column in (("--score-col", score_col), ("--label-col", label_col)):
        check(column in table.columns, f"{flag} {column!r} is not a column of {str(path)!r}; columns: {columns}")
    return table[score_col].to_numpy(), table[label_col].to_numpy()


def load_scores(data: Path | None, score_col: str, label_col: str, synthetic: str | None,
                seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Scores and labels from --data or --synthetic (exactly one; shared with `fedsim audit auc`)."""
    from fedsim.evaluation import synthetic_scores

    check((data is None) != (synthetic is None), "give exactly one of --data PATH and --synthetic NAME")
    if data is not None:
        return read_scores(data, score_col, label_col)
    return synthetic_scores(synthetic, seed)


def read_class_scores(path: Path, prefix: str, label_col: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Multiclass score file: one score column per class named PREFIX + class name, and a label column
    holding the class names; returns (n, K) scores, class indices (column order) and the class names."""
    import numpy as np

    from fedsim.data.files import read_frame

    table = read_frame(path)
    columns = ", ".join(map(str, table.columns))
    check(label_col in table.columns, f"--label-col {label_col!r} is not a column of {str(path)!r}; columns: "
                                      f"{columns}")
    score_cols = [c for c in map(str, table.columns) if c.startswith(prefix) and c != label_col]
    check(len(score_cols) >= 2, f"--class-scores {prefix!r} matches {len(score_cols)} columns of {str(path)!r}; "
                                f"give one score column per class (PREFIX + class name, K >= 2); columns: {columns}")
    classes = [c[len(prefix):] for c in score_cols]
    labels = table[label_col].astype(str).to_numpy()
    index = {name: k for k, name in enumerate(classes)}
    unknown = sorted(set(labels) - set(index))
    if unknown:
        raise UserError(f"label {unknown[0]!r} of --label-col {label_col!r} has no score column "
                        f"{prefix}{unknown[0]}; classes: {', '.join(classes)}")
    try:
        scores = table[score_cols].to_numpy(dtype=np.float64)
    except (TypeError, ValueError):
        raise UserError(f"the --class-scores columns of {str(path)!r} must be numbers") from None
    return scores, np.array([index[name] for name in labels], dtype=np.int64), classes


# EvalConfig settings that say where the scores come from or what happens around the release; the others are
# `run_auc`'s keyword arguments
INPUTS = {"data", "score_col", "label_col", "class_scores", "synthetic", "method", "epsilon", *{
    "curves", "projection", "plot", "ledger", "budget"}}


@config_command(EvalConfig)
def auc_command(
    config: EvalConfig,
    json_output: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
) -> None:
    """Compute a score column's AUC under label DP.

    One release with its 95% interval, or (--repeats R) bias, std, RMSE and interval coverage over R
    releases. Methods: {auc_methods}.
    """
    from fedsim.evaluation import run_auc

    if config.class_scores is not None:
        data = config.data
        if data is None or config.synthetic is not None:
            raise UserError("--class-scores needs --data PATH (not --synthetic)")
        check(config.runtime == "local" and config.setting == "horizontal" and config.threshold is None
              and not config.secure_aggregation,
              "--class-scores runs in-process only: drop --runtime flower, --setting vertical, --threshold and "
              "--secure-aggregation")
        check(not config.curves and config.ledger is None, "--curves and --ledger are for binary scores: drop them "
                                                           "with --class-scores")
        multiclass_auc(read_class_scores(data, config.class_scores, config.label_col), config, json_output, quiet)
        return
    check(config.curves or (config.plot is None and config.projection == EvalConfig.model_fields["projection"].default),
          "--plot and --projection need --curves")
    check(config.budget is None or config.ledger is not None, "--budget needs --ledger FILE")
    check(config.plot is None or config.plot.suffix.lower() == ".png", f"--plot must name a .png file, got "
                                                                       f"{str(config.plot)!r}")
    scores, labels = load_scores(config.data, config.score_col, config.label_col, config.synthetic, config.seed)
    cost = release_cost(config)
    if config.ledger is not None:
        from fedsim.evaluation.budget import check_budget, label_set

        check_budget(config.ledger, label_set(labels), cost[0], config.budget)
    result = run_auc(config.method, scores, labels, config.epsilon, show_progress=not quiet,
                     curves=config.projection if config.curves else None, truth=config.synthetic is not None,
                     **config.model_dump(exclude=INPUTS))
    if config.plot is not None:
        plot_curves_of(config, config.plot, result)
    if config.ledger is not None:
        from fedsim.evaluation.budget import label_set, record, spent

        ledger = record(config.ledger, label_set(labels), *cost,
                        {"method": config.method, "repeats": config.repeats, "curves": config.curves})
        result["ledger"] = dict(zip(("epsilon_spent", "delta_spent"), spent(ledger, label_set(labels)),
                                    strict=True))
    if json_output:
        emit_json(result)
        return
    console = new_console()
    secure = ", secure aggregation" if config.secure_aggregation else ""
    clients = config.clients
    console.print(f"[bold]{config.method}[/] AUC {result['estimate']:.6f}  {interval_text(result)}  "
                  f"(n = {result['n']:,}, {clients} client{'s' * (clients > 1)}{secure}, {config.runtime})")
    print_repeats(console, result)
    if "curves" in result:
        print_curves(console, result["curves"])
    if "at_threshold" in result:
        console.print("at threshold " + ", ".join(f"{k} {v:.4f}" for k, v in result["at_threshold"].items()))
    console.print(f"privacy: {result['guarantee']}")


def release_cost(config: EvalConfig) -> tuple[float, float | None]:
    """(epsilon, delta) of this command's releases on the labels: R repeats cost R releases; the curves are
    post-processing (free); no epsilon or epsilon = inf (exact) is no privacy: an infinite cost."""
    epsilon = math.inf if config.epsilon is None or config.method == "exact" else config.epsilon
    delta = (config.delta or 1e-6) if config.method == "hist_gauss" else None
    return epsilon * config.repeats, None if delta is None else delta * config.repeats


def plot_curves_of(config: EvalConfig, plot: Path, result: dict) -> None:
    """Draw release 0's curves (`run_auc` with `curves`) to --plot, with the release's setting in the title."""
    from fedsim.evaluation.curve_plot import plot_curves

    curves = result["curves"]
    delta = f", delta {config.delta or 1e-6:g}" if config.method == "hist_gauss" else ""
    secure = f", {config.clients} clients, secure aggregation" if config.secure_aggregation else ""
    title = (f"{config.method}: epsilon {config.epsilon if config.epsilon is not None else 'none'}{delta}, "
             f"n = {result['n']:,}, B = {len(curves['bucket_sizes'])} buckets{secure}, "
             f"{config.synthetic or config.data}")
    plot_curves(curves, title, plot)


def print_curves(console: Console, curves: dict) -> None:
    """The scalar curve metrics and their intervals, each named by what its interval covers (the arrays are in
    --json; fedsim.evaluation.curves)."""
    buckets = len(curves["bucket_sizes"])
    names = {"average_precision_at_thresholds": f"average precision at the {buckets} released thresholds (not "
                                                 "scikit-learn's AP of the raw scores)",
             "ece": f"ECE over the {buckets} released buckets", "brier": "Brier score (of the raw scores)"}
    for key, name in names.items():
        low, high = curves[f"{key}_ci95"]
        console.print(f"{name} {curves[key]:.4f}  95% CI [{low:.4f}, {high:.4f}]")
    console.print(f"curves: {len(curves['tpr'])} ROC points, projection {curves['projection']} (--json for the arrays)")


def multiclass_auc(data: tuple[np.ndarray, np.ndarray, list[str]], config: EvalConfig, json_output: bool,
                   quiet: bool) -> None:
    """`fedsim auc --class-scores`: the one-vs-rest macro AUC (fedsim.evaluation.multiclass)."""
    from fedsim.evaluation.multiclass import run_multiclass_auc

    scores, labels, classes = data
    c = config
    result = run_multiclass_auc(c.method, scores, labels, classes, c.epsilon, c.delta, c.buckets, c.clients, c.split,
                                c.repeats, c.seed, show_progress=not quiet, bucketing=c.bucketing)
    if json_output:
        emit_json(result)
        return
    console = new_console()
    low, high = result["ci95"]
    console.print(f"[bold]{c.method}[/] macro AUC {result['estimate']:.6f}  95% CI [{low:.6f}, {high:.6f}]  "
                  f"(n = {result['n']:,}, {result['classes']} classes)")
    console.print("per class: " + ", ".join(f"{k} {v:.4f}" for k, v in result["per_class"].items()))
    print_repeats(console, result)
    console.print(f"privacy: {result['guarantee']}")


def interval_text(result: dict) -> str:
    """The 95% interval, or why there is none (`ci95` null)."""
    if result["ci95"] is None:
        return f"95% CI: none ({result['ci95_interval']})"
    low, high = result["ci95"]
    return f"95% CI [{low:.6f}, {high:.6f}]"


def print_repeats(console: Console, result: dict) -> None:
    """The evaluation over repeated releases, when there was more than one."""
    if result["repeats"] > 1:
        console.print(f"over {result['repeats']} releases: exact {result['exact']:.6f}, bias {result['bias']:+.2e}, "
                      f"std {result['std']:.2e}, RMSE {result['rmse']:.2e}, CI coverage {result['ci_coverage']:.2f}")
