"""`fedsim auc`: the AUC of a score column under label DP (one release, or an evaluation over repeats)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import typer
from rich.console import Console

from fedsim.cli.common import emit_json
from fedsim.errors import UserError, check


def read_scores(path: Path, score_col: str, label_col: str) -> tuple[np.ndarray, np.ndarray]:
    """Score and label columns of a CSV or Parquet file, with one-line errors for missing files/columns."""
    from fedsim.data.files import read_frame

    table = read_frame(path)
    columns = ", ".join(map(str, table.columns))
    for flag, column in (("--score-col", score_col), ("--label-col", label_col)):
        check(column in table.columns, f"{flag} {column!r} is not a column of {str(path)!r}; columns: {columns}")
    return table[score_col].to_numpy(), table[label_col].to_numpy()


def read_class_scores(path: Path, prefix: str, label_col: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Multiclass score file: one score column per class named PREFIX + class name, and a label column
    holding the class names; returns (n, K) scores, class indices (column order) and the class names."""
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


def auc_command(
    data: Path = typer.Option(None, help="CSV or Parquet file with a score column and a 0/1 label column."),
    score_col: str = typer.Option("score", "--score-col", help="Score column of --data."),
    label_col: str = typer.Option("label", "--label-col", help="0/1 label column of --data (with --class-scores: "
                                                                "the class names)."),
    class_scores: str = typer.Option(None, "--class-scores",
                                     help="Multiclass: every column named PREFIX + class name holds that class's "
                                          "score; the estimate is the one-vs-rest macro AUC (methods exact, hist, "
                                          "hist_gauss; epsilon covers all classes)."),
    synthetic: str = typer.Option(None, help="A seeded synthetic score set instead of --data: "
                                             "{synthetic_scores}."),
    method: str = typer.Option(..., help="AUC method: {auc_methods}."),
    epsilon: float = typer.Option(None, help="Total label-DP epsilon (> 0; inf: no noise)."),
    delta: float = typer.Option(None, help="delta of hist_gauss (default 1e-6)."),
    buckets: int = typer.Option(None, help="Score buckets (>= 2); default: a rule in n, epsilon, clients."),
    thresholds: int = typer.Option(100, help="DPAUC's number of thresholds K."),
    clients: int = typer.Option(1, help="Clients M, each adding its own noise (1: vertical / central)."),
    split: str = typer.Option("iid", help="How examples are spread over clients: iid | score_sorted."),
    runtime: str = typer.Option("local", help="local | flower (the same computation as a Flower app)."),
    setting: str = typer.Option("horizontal", help="horizontal (M clients) | vertical (a score holder and a "
                                                   "label holder)."),
    threshold: float = typer.Option(None, help="Also report accuracy, precision, recall, F1 at score >= T."),
    repeats: int = typer.Option(1, help="R > 1: evaluate bias, std, RMSE and CI coverage over R releases."),
    seed: int = typer.Option(0, help="Seed of the noise (and of --synthetic data)."),
    json_output: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
) -> None:
    """Compute a score column's AUC under label DP.

    One release with its 95% interval, or (--repeats R) bias, std, RMSE and interval coverage over R
    releases. Methods: {auc_methods}.
    """
    from fedsim.evaluation import run_auc, synthetic_scores

    check((data is None) != (synthetic is None), "give exactly one of --data PATH and --synthetic NAME")
    if class_scores is not None:
        check(data is not None, "--class-scores needs --data PATH")
        check(runtime == "local" and setting == "horizontal" and threshold is None,
              "--class-scores runs in-process only: drop --runtime flower, --setting vertical and --threshold")
        multiclass_auc(read_class_scores(data, class_scores, label_col), method, epsilon, delta, buckets, clients,
                       split, repeats, seed, json_output, quiet)
        return
    if data is not None:
        scores, labels = read_scores(data, score_col, label_col)
    else:
        scores, labels = synthetic_scores(synthetic, seed)
    result = run_auc(method, scores, labels, epsilon, delta=delta, buckets=buckets, thresholds=thresholds,
                     clients=clients, split=split, repeats=repeats, seed=seed, runtime=runtime,
                     show_progress=not quiet, threshold=threshold, setting=setting)
    if json_output:
        emit_json(result)
        return
    console = Console()
    low, high = result["ci95"]
    console.print(f"[bold]{method}[/] AUC {result['estimate']:.6f}  95% CI [{low:.6f}, {high:.6f}]  "
                  f"(n = {result['n']:,}, {clients} client{'s' * (clients > 1)}, {runtime})")
    print_repeats(console, result)
    if "at_threshold" in result:
        console.print("at threshold " + ", ".join(f"{k} {v:.4f}" for k, v in result["at_threshold"].items()))
    console.print(f"privacy: {result['guarantee']}")


def multiclass_auc(data: tuple[np.ndarray, np.ndarray, list[str]], method: str, epsilon: float | None,
                   delta: float | None, buckets: int | None, clients: int, split: str, repeats: int, seed: int,
                   json_output: bool, quiet: bool) -> None:
    """`fedsim auc --class-scores`: the one-vs-rest macro AUC (fedsim.evaluation.multiclass)."""
    from fedsim.evaluation.multiclass import run_multiclass_auc

    scores, labels, classes = data
    result = run_multiclass_auc(method, scores, labels, classes, epsilon, delta, buckets, clients, split, repeats,
                                seed, show_progress=not quiet)
    if json_output:
        emit_json(result)
        return
    console = Console()
    low, high = result["ci95"]
    console.print(f"[bold]{method}[/] macro AUC {result['estimate']:.6f}  95% CI [{low:.6f}, {high:.6f}]  "
                  f"(n = {result['n']:,}, {result['classes']} classes)")
    console.print("per class: " + ", ".join(f"{k} {v:.4f}" for k, v in result["per_class"].items()))
    print_repeats(console, result)
    console.print(f"privacy: {result['guarantee']}")


def print_repeats(console: Console, result: dict) -> None:
    """The evaluation over repeated releases, when there was more than one."""
    if result["repeats"] > 1:
        console.print(f"over {result['repeats']} releases: exact {result['exact']:.6f}, bias {result['bias']:+.2e}, "
                      f"std {result['std']:.2e}, RMSE {result['rmse']:.2e}, CI coverage {result['ci_coverage']:.2f}")
