"""`fedsim train` and `fedsim datasets`."""

from __future__ import annotations

from pathlib import Path

import typer

from fedsim.cli.common import emit_json, new_console
from fedsim.cli.options import config_command
from fedsim.config import TrainConfig


def datasets_command(json_output: bool = typer.Option(False, "--json", help="Print one JSON object.")) -> None:
    """List the built-in datasets: name, rows, features, task, source."""
    from fedsim.data import DATASETS

    rows = [
        {"name": s.name, "rows": s.rows, "features": s.features, "task": s.task, "source": s.source,
         "available": s.available}
        for s in (DATASETS.get(n) for n in DATASETS.names())
    ]
    if json_output:
        emit_json({"datasets": rows})
        return
    from rich.table import Table

    table = Table("name", "rows", "features", "task", "source")
    for r in rows:
        table.add_row(r["name"], f"{r['rows']:,}", str(r["features"]), r["task"],
                      r["source"] + ("" if r["available"] else "  (not installed)"))
    new_console().print(table)


@config_command(TrainConfig, insert={"record_last_epochs": ("transcript",),
                                     "malicious_update_scale": ("stream", "overwrite")})
def train_command(
    config: TrainConfig,
    transcript: Path = typer.Option(None, help="Save every feature party's transcript to this new folder "
                                               "(input of `fedsim attack`)."),
    stream: bool = typer.Option(False, "--stream", help="Write transcript rows to disk as they come (needs "
                                                        "--transcript)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing --transcript folder."),
    json_output: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
    threads: int = typer.Option(1, min=1, help="Torch threads (small split models run fastest on one)."),
) -> None:
    """Train a split model: a label party and K feature parties.

    Prints the test metrics, the privacy guarantee and the time; --transcript DIR saves what each feature
    party saw, for `fedsim attack`.
    """
    from fedsim.errors import check
    from fedsim.threads import torch_threads
    from fedsim.training import train

    check(stream is False or transcript is not None, "--stream needs --transcript DIR")
    with torch_threads(threads):
        result = train(config, transcript_dir=transcript, overwrite=overwrite, stream=stream,
                       record=transcript is not None, show_progress=not quiet)
    payload = result.to_json()
    if json_output:
        emit_json(payload)
        return
    console = new_console()
    metrics = ", ".join(f"{k} {v:.4g}" for k, v in payload["test"].items())
    parties = f"{payload['parties']} feature part{'y' if payload['parties'] == 1 else 'ies'}"
    console.print(f"[bold]{payload['dataset']}[/] ({payload['task']}, {payload['n_train']} train / "
                  f"{payload['n_test']} test, {parties}, {config.runtime} runtime)")
    console.print(f"test: {metrics}")
    privacy = payload["privacy"]
    eps = "none" if privacy["epsilon"] is None else f"{privacy['epsilon']:.4g}"
    console.print(f"privacy: epsilon {eps} - {privacy['guarantee']}")
    if "top_model_dp" in privacy:
        console.print(f"top model: {privacy['top_model_dp']['guarantee']}")
    console.print(f"time: {payload['timing']['train_s']:.2f} s, {payload['timing']['per_step_ms']:.2f} ms/step")
    if payload["transcript"]:
        console.print(f"transcript: {payload['transcript']}")
