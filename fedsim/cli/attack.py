"""`fedsim attack`: play the curious feature party on a saved transcript and score the label estimates."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import typer
from rich.console import Console

from fedsim.cli.common import emit_json, parse_params
from fedsim.errors import UserError, check


def attack_command(
    transcript: Path = typer.Option(..., help="A transcript folder written by `fedsim train --transcript`."),
    attack: str = typer.Option(..., "--attack", help="Attack name: lba, residual, model_completion, linear, ..."),
    known_fraction: float = typer.Option(None, "--known-fraction",
                                         help="Fraction of training labels the attacker knows (default 0.01, "
                                              "at least 10)."),
    known: int = typer.Option(None, "--known", help="Number of known labels (instead of --known-fraction)."),
    param: list[str] = typer.Option(None, "--param", help="Attack parameter KEY=VALUE, repeatable."),
    party: int = typer.Option(0, "--party", help="Which feature party attacks."),
    seed: int = typer.Option(0, help="Seed of the known-label choice and of the attack."),
    json_output: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
    quiet: bool = typer.Option(False, help="No progress bar."),
) -> None:
    """Infer the label party's training labels from one feature party's transcript; metrics on unknown samples."""
    from fedsim import attacks
    from fedsim.rundir import load_party_view, load_truth

    check(known_fraction is None or known is None, "give either --known-fraction or --known, not both")
    if known_fraction is not None:
        check(0 < known_fraction < 1, f"--known-fraction must be in (0, 1), got {known_fraction}")
    attacks.ATTACKS.get(attack)  # unknown names fail before any loading
    params = parse_params(param, "--param")
    view = load_party_view(transcript, party)
    truth = load_truth(transcript)
    try:
        order = np.argsort(truth["train_ids"])
        pos = order[np.searchsorted(truth["train_ids"], view.sample_ids, sorter=order)]
        y_true = truth["y_train"][pos]
        ok = np.array_equal(truth["train_ids"][pos], view.sample_ids)
    except (KeyError, IndexError, ValueError):
        ok = False
    if not ok:
        raise UserError(f"corrupt transcript directory {str(transcript)!r}: truth labels do not match the party's ids")
    fraction = 0.01 if known_fraction is None else known_fraction
    result = attacks.evaluate_attack(view, y_true, attack, params, known_fraction=fraction, known=known, seed=seed,
                                     show_progress=not quiet)
    if json_output:
        emit_json(result)
        return
    console = Console()
    metrics = ", ".join(f"{k} {v:.4g}" for k, v in result["metrics"].items())
    console.print(f"[bold]{attack}[/] on party {party}: {result['known_labels']} known labels, "
                  f"{result['n_attacked']} attacked samples")
    console.print(f"metrics: {metrics}")
    if "baseline_mean_mse" in result:
        console.print(f"mean predictor mse: {result['baseline_mean_mse']:.4g}")
    for name, values in result.get("readouts", {}).items():
        console.print(f"read-out {name}: " + ", ".join(f"{k} {v:.4g}" for k, v in values.items()))
    if "epochs_used" in result:
        console.print(f"epochs used: {result['epochs_used']}")
    console.print(f"time: {result['timing']['attack_s']:.2f} s")
