"""`fedsim attack`: play the curious feature party on a saved transcript and score the label estimates.

A transcript written by `fedsim train` has a `truth/` folder: known labels are drawn from it by seed and the
estimates are scored. A transcript from a real deployment has none: the attacker's known labels come from
`--known-labels FILE.csv` (columns id,label) and the estimates go to `--estimates OUT.csv`, unscored.
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from fedsim.cli.common import emit_json, new_console
from fedsim.errors import UserError, check
from fedsim.side_process import SideProcess

# what the side process imports at once: the references' estimators and the metrics
SCIKIT_MODULES = ("sklearn.ensemble", "sklearn.linear_model", "sklearn.pipeline", "sklearn.preprocessing",
                  "sklearn.metrics", "scipy.stats")

if TYPE_CHECKING:  # rich, numpy and pandas load when a command runs, not for --help
    import numpy as np
    from rich.console import Console


def attack_command(
    transcript: Path = typer.Option(..., help="A transcript folder written by `fedsim train --transcript` "
                                              "(or by a deployment)."),
    attack: str = typer.Option(..., "--attack", help="Attack: {attacks} (`fedsim attacks` shows their "
                                                     "parameters)."),
    known_fraction: float = typer.Option(None, "--known-fraction",
                                         help="Fraction of training labels the attacker knows, drawn from the "
                                              "truth by --seed (default 0.01, at least 10)."),
    known: int = typer.Option(None, "--known", help="Number of known labels drawn from the truth (instead of "
                                                    "--known-fraction; 0 for attacks that need none)."),
    known_labels: Path = typer.Option(None, "--known-labels",
                                      help="CSV with columns id,label: the labels the attacker knows (instead "
                                           "of drawing them from the truth; needed without a truth/ folder)."),
    estimates: Path = typer.Option(None, "--estimates", help="Write the label estimates of the attacked samples "
                                                             "to this CSV (id,estimate[,read-outs]); replaced "
                                                             "atomically."),
    param: list[str] = typer.Option(None, "--param", help="Attack parameter KEY=VALUE, repeatable."),
    party: int = typer.Option(0, "--party", help="Which feature party attacks (0..K-1)."),
    seed: int = typer.Option(0, help="Seed of the known-label draw and of the attack."),
    json_output: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
) -> None:
    """Infer the training labels from a feature party's transcript.

    Metrics (on the attacked samples only, never the known ones) when the transcript has its truth/ folder;
    --estimates OUT.csv writes the estimates either way.
    """
    # forked before torch loads: scikit-learn imports on the other core, then fits and scores the references there
    with SideProcess(SCIKIT_MODULES, enabled=(transcript / "truth").is_dir()) as side:
        import numpy as np

        from fedsim import attacks
        from fedsim.attacks.baselines import compute_references, reference_count, reference_inputs, references_apply
        from fedsim.attacks.evaluate import draw_known, run_attack, score_attack
        from fedsim.metrics import attack_metrics
        from fedsim.params import parse_params
        from fedsim.progress import progress_bar
        from fedsim.reference_fits import fit_scikit_references
        from fedsim.rundir import load_party_view, load_truth

        check(known_fraction is None or known is None, "give either --known-fraction or --known, not both")
        check(known_labels is None or (known_fraction is None and known is None),
              "give either --known-labels FILE.csv or --known-fraction/--known, not both")
        if known_fraction is not None:
            check(0 < known_fraction < 1, f"--known-fraction must be in (0, 1), got {known_fraction}")
        if estimates is not None:
            check(estimates.suffix.lower() == ".csv", f"--estimates must name a .csv file, got {str(estimates)!r}")
            check(estimates.parent.is_dir(), f"--estimates: folder {str(estimates.parent)!r} does not exist")
        attacks.ATTACKS.get(attack)  # unknown names fail before any loading
        params = parse_params(param, "--param")
        started = time.perf_counter()
        with progress_bar(1, f"loading and checking {transcript.name}", not quiet) as advance:
            view = load_party_view(transcript, party)
            has_truth = (transcript / "truth").exists()
            y_true = aligned_truth(load_truth(transcript), view, transcript) if has_truth else None
            advance(1)
        load_s = time.perf_counter() - started
        if known_labels is not None:
            knowledge = attacks.AttackerKnowledge(*read_known_labels(known_labels, view))
        elif y_true is not None:
            fraction = 0.01 if known_fraction is None else known_fraction
            knowledge = draw_known(view, y_true, fraction, known, seed)
        elif known == 0:
            knowledge = attacks.AttackerKnowledge(view.sample_ids[:0], np.zeros(0))
        else:
            raise UserError(f"transcript {str(transcript)!r} has no truth/ folder (a real deployment's): give the "
                            f"labels the attacker knows with --known-labels FILE.csv (columns id,label)")
        fitted = None  # the scikit-learn references, fitted beside the attack
        if y_true is not None and references_apply(view, knowledge):
            fitted = side.submit(fit_scikit_references, reference_inputs(view, knowledge), seed)
        estimate, result = run_attack(view, attack, params, knowledge, seed, show_progress=not quiet)
        if y_true is not None:
            references_started = time.perf_counter()
            with progress_bar(reference_count(), "references (features only, embeddings)", not quiet) as advance:
                references = compute_references(view, knowledge, seed, advance=advance, fitted=fitted)
            result["timing"]["references_s"] = time.perf_counter() - references_started
            result.update(score_attack(view, estimate, y_true, knowledge, references,
                                       lambda *args: side.run(attack_metrics, *args)))
        result["timing"] |= {"load_s": load_s, "total_s": time.perf_counter() - started}
        result["estimates"] = None
        if estimates is not None:
            write_estimates(estimates, estimate)
            result["estimates"] = str(estimates)
        if json_output:
            emit_json(result)
        else:
            _print(result, party)


def aligned_truth(truth: dict[str, np.ndarray], view: Any, transcript: Path) -> np.ndarray:
    """The true training labels in the order of the party's sample ids."""
    import numpy as np

    try:
        order = np.argsort(truth["train_ids"])
        pos = order[np.searchsorted(truth["train_ids"], view.sample_ids, sorter=order)]
        if np.array_equal(truth["train_ids"][pos], view.sample_ids):
            return truth["y_train"][pos]
    except (KeyError, IndexError, ValueError):
        pass
    raise UserError(f"corrupt transcript directory {str(transcript)!r}: truth labels do not match the party's ids")


def read_known_labels(path: Path, view: Any) -> tuple[np.ndarray, np.ndarray]:
    """(ids, labels) from a CSV with columns id,label; every id must be one of the party's training samples."""
    import numpy as np
    import pandas as pd

    check(path.is_file(), f"--known-labels file {str(path)!r} does not exist")
    try:
        table = pd.read_csv(path)
    except Exception as exc:  # pandas raises many types for unreadable files
        raise UserError(f"cannot read --known-labels file {str(path)!r}: {exc}".splitlines()[0]) from exc
    check({"id", "label"} <= set(table.columns),
          f"--known-labels file {str(path)!r} needs columns id,label; it has: {', '.join(map(str, table.columns))}")
    check(table["id"].is_unique, f"--known-labels file {str(path)!r} lists an id twice")
    check(pd.api.types.is_numeric_dtype(table["label"]) and bool(np.isfinite(table["label"]).all()),
          f"--known-labels file {str(path)!r}: every label must be a finite number")
    labels = np.array(table["label"], dtype=np.float64)  # a writable copy: attacks index into it
    if view.task == "binary":
        check(set(np.unique(labels)) <= {0.0, 1.0}, f"--known-labels file {str(path)!r}: binary labels are 0 or 1")
    ids = table["id"].to_numpy()
    if view.sample_ids.dtype.kind not in "iuf":  # string ids in the transcript: compare as text
        ids = ids.astype(str)
    positions = pd.Index(view.sample_ids).get_indexer(ids)
    missing = ids[positions < 0]
    if missing.size:
        raise UserError(f"--known-labels file {str(path)!r}: {missing.size} ids are not training samples of "
                        f"party {view.party}, e.g. {missing.tolist()[0]!r}")
    return view.sample_ids[positions], labels


def write_estimates(path: Path, estimate: Any) -> None:
    """id, estimate and one column per read-out; written to a temporary file, then renamed into place."""
    import numpy as np
    import pandas as pd

    table = pd.DataFrame({"id": np.asarray(estimate.ids), "estimate": np.asarray(estimate.estimates)})
    for name, values in estimate.readouts.items():
        table[f"estimate_{name}"] = np.asarray(values)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        table.to_csv(tmp, index=False)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _print(result: dict[str, Any], party: int) -> None:
    console = new_console()
    console.print(f"[bold]{result['attack']}[/] on party {party}: {result['known_labels']} known labels, "
                  f"{result['n_attacked']} attacked samples")
    if "metrics" in result:
        console.print("metrics: " + ", ".join(f"{k} {v:.4g}" for k, v in result["metrics"].items()))
    else:
        console.print("metrics: none (the transcript has no truth/ folder)")
    if "baseline_mean_mse" in result:
        console.print(f"mean predictor mse: {result['baseline_mean_mse']:.4g}")
    if "references" in result:
        _print_references(console, result)
    for name, values in result.get("readouts", {}).items():
        console.print(f"read-out {name}: " + ", ".join(f"{k} {v:.4g}" for k, v in values.items()))
    if "epochs_used" in result:
        console.print(f"epochs used: {result['epochs_used']}")
    if result["estimates"]:
        console.print(f"estimates: {result['estimates']}")
    timing = result["timing"]
    parts = [f"{name} {timing[key]:.2f} s" for name, key in (("load", "load_s"), ("attack", "attack_s"),
                                                            ("references", "references_s")) if key in timing]
    console.print(f"time: {timing['total_s']:.2f} s ({', '.join(parts)})")


def _print_references(console: Console, result: dict[str, Any]) -> None:
    """The reference predictors' headline metric, and the advantage over the best features-only one."""
    from fedsim.attacks.baselines import HEADLINE_METRIC

    metric = next((m for m in HEADLINE_METRIC.values() if m in result["metrics"]), None)
    if metric is None:
        return
    scored = ", ".join(f"{name} {r[metric]:.4g}" for name, r in result["references"].items() if metric in r)
    console.print(f"references ({metric} on the same samples, no transcript): {scored}", markup=False)
    if "advantage" in result["metrics"]:
        console.print(f"advantage: {result['metrics']['advantage']:+.4g} {metric} over "
                      f"{result['advantage_reference']} (the best that uses only the party's features and "
                      f"known labels)", markup=False)
    if result.get("advantage_scoring") == "matched":
        console.print("advantage scored on matched classes (best one-to-one relabelling, docs/scoring.md)"
                      + ("; raw and matched differ by more than 0.05" if result.get("relabelled") else ""))
    if "advantage_bound" in result:
        console.print(f"eps-label-DP bound on the advantage in accuracy: {result['advantage_bound']:+.4g}"
                      + (" - EXCEEDED beyond its binomial margin" if result["exceeds_bound"] else ""), markup=False)
