"""`fedsim train` and `fedsim datasets`."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from fedsim.cli.common import emit_json, parse_params
from fedsim.config import ModelConfig, TrainConfig, validated


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
    table = Table("name", "rows", "features", "task", "source")
    for r in rows:
        table.add_row(r["name"], f"{r['rows']:,}", str(r["features"]), r["task"],
                      r["source"] + ("" if r["available"] else "  (not installed)"))
    Console().print(table)


def train_command(
    dataset: str = typer.Option(None, help="Built-in dataset name (see `fedsim datasets`)."),
    data: Path = typer.Option(None, help="A CSV or Parquet file with the features and the target."),
    target: str = typer.Option(None, help="Target column of --data."),
    id_column: str = typer.Option(None, "--id-column", help="Sample-id column of --data (default: row number)."),
    rows: int = typer.Option(None, help="Rows to generate (synthetic datasets only)."),
    task: str = typer.Option(None, help="regression|binary (inferred when omitted)."),
    parties: int = typer.Option(2, help="Number of feature parties."),
    partition: str = typer.Option("contiguous", help="contiguous|random split of the feature columns."),
    runtime: str = typer.Option("local", help="local|flower."),
    epochs: int = typer.Option(20),
    batch_size: int = typer.Option(64, "--batch-size"),
    lr: float = typer.Option(1e-3, "--lr"),
    embedding_dim: int = typer.Option(16, "--embedding-dim"),
    hidden: int = typer.Option(64, help="Width of the bottom and top MLPs."),
    top_model: str = typer.Option("mlp", "--top-model", help="mlp|linear."),
    seed: int = typer.Option(0),
    label_defense: str = typer.Option(None, "--label-defense"),
    gradient_defense: str = typer.Option(None, "--gradient-defense"),
    epsilon: float = typer.Option(None),
    delta: float = typer.Option(None),
    defense_param: list[str] = typer.Option(None, "--defense-param", help="KEY=VALUE, repeatable."),
    transcript: Path = typer.Option(None, help="Save every feature party's transcript to this new folder."),
    record_last_epochs: int = typer.Option(None, "--record-last-epochs", help="Keep only the last E epochs."),
    stream: bool = typer.Option(False, help="Stream transcripts to disk instead of holding them in memory."),
    overwrite: bool = typer.Option(False, help="Replace an existing --transcript folder."),
    json_output: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
    quiet: bool = typer.Option(False, help="No progress bar."),
    threads: int = typer.Option(1, min=1, help="Torch threads (small split models run fastest on one)."),
) -> None:
    """Train a split model across a label party and K feature parties."""
    from fedsim.errors import check
    from fedsim.threads import torch_threads
    from fedsim.training import train

    check(stream is False or transcript is not None, "--stream needs --transcript DIR")
    model = validated(ModelConfig, embedding_dim=embedding_dim, bottom_hidden=hidden, top_hidden=hidden,
                      top_model=top_model)
    config = validated(
        TrainConfig, dataset=(dataset or "diabetes") if data is None else None,
        data=str(data) if data else None, target=target,
        id_column=id_column, rows=rows, task=task, parties=parties, partition=partition, runtime=runtime,
        epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, model=model, label_defense=label_defense,
        gradient_defense=gradient_defense, epsilon=epsilon, delta=delta,
        defense_params=parse_params(defense_param, "--defense-param"), record_last_epochs=record_last_epochs,
    )
    with torch_threads(threads):
        result = train(config, transcript_dir=transcript, overwrite=overwrite, stream=stream,
                       record=transcript is not None, show_progress=not quiet)
    payload = result.to_json()
    if json_output:
        emit_json(payload)
        return
    console = Console()
    metrics = ", ".join(f"{k} {v:.4g}" for k, v in payload["test"].items())
    console.print(f"[bold]{payload['dataset']}[/] ({payload['task']}, {payload['n_train']} train / "
                  f"{payload['n_test']} test, {payload['parties']} feature parties, {config.runtime} runtime)")
    console.print(f"test: {metrics}")
    privacy = payload["privacy"]
    eps = "none" if privacy["epsilon"] is None else f"{privacy['epsilon']:.4g}"
    console.print(f"privacy: epsilon {eps} - {privacy['guarantee']}")
    if "top_model_dp" in privacy:
        console.print(f"top model: {privacy['top_model_dp']['guarantee']}")
    console.print(f"time: {payload['timing']['train_s']:.2f} s, {payload['timing']['per_step_ms']:.2f} ms/step")
    if payload["transcript"]:
        console.print(f"transcript: {payload['transcript']}")
