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


def train_config(
    dataset: str | None, data: Path | None, target: str | None, id_column: str | None, rows: int | None,
    task: str | None, parties: int, partition: str, runtime: str, epochs: int, batch_size: int, lr: float,
    embedding_dim: int | None, hidden: int, top_model: str, seed: int, local_steps: int, label_defense: str | None,
    gradient_defense: str | None, epsilon: float | None, delta: float | None, defense_param: list[str] | None,
    record_last_epochs: int | None = None, label_party_features: int = 0, malicious_party: int = 0,
    malicious_update_scale: float = 1.0,
) -> TrainConfig:
    """The run's validated config from the `fedsim train` options (shared with `fedsim audit train`)."""
    width = {} if embedding_dim is None else {"embedding_dim": embedding_dim}  # sum: the outputs' width
    model = validated(ModelConfig, **width, bottom_hidden=hidden, top_hidden=hidden, top_model=top_model)
    return validated(
        TrainConfig, dataset=(dataset or "diabetes") if data is None else None,
        data=str(data) if data else None, target=target,
        id_column=id_column, rows=rows, task=task, parties=parties, partition=partition, runtime=runtime,
        epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, model=model, label_defense=label_defense,
        gradient_defense=gradient_defense, epsilon=epsilon, delta=delta,
        defense_params=parse_params(defense_param, "--defense-param"), record_last_epochs=record_last_epochs,
        local_steps=local_steps, label_party_features=label_party_features, malicious_party=malicious_party,
        malicious_update_scale=malicious_update_scale,
    )


def train_command(
    dataset: str = typer.Option(None, help="Built-in dataset: {datasets} (default diabetes; `fedsim datasets` "
                                           "lists sizes)."),
    data: Path = typer.Option(None, help="A CSV or Parquet file with the feature columns and the target "
                                         "(instead of --dataset)."),
    target: str = typer.Option(None, help="Target (label) column of --data; required with --data."),
    id_column: str = typer.Option(None, "--id-column",
                                  help="Sample-id column of --data. Default: a column named 'id' if there is one, "
                                       "else row numbers; a column that looks like a row id (unique integers "
                                       "0..n-1 or 1..n) must be named here, or 'none' keeps it as a feature."),
    rows: int = typer.Option(None, help="Rows to generate (synthetic datasets only)."),
    task: str = typer.Option(None, help="regression | binary | multiclass (default: binary if the target has "
                                        "two values, multiclass if it has more and they are not numbers, else "
                                        "regression)."),
    parties: int = typer.Option(2, help="Number of feature parties K."),
    label_party_features: int = typer.Option(0, "--label-party-features", min=0,
                                             help="The label party keeps N feature columns (the last N; with "
                                                  "--partition random, N at random) for its own bottom model, "
                                                  "whose embeddings never leave it; the feature parties split the "
                                                  "rest. Default 0: it holds only the labels."),
    partition: str = typer.Option("contiguous", help="How feature columns are split over the parties: "
                                                     "contiguous | random (seeded)."),
    runtime: str = typer.Option("local", help="local (in-process) | flower (Flower simulation on Ray)."),
    epochs: int = typer.Option(20, help="Training epochs."),
    batch_size: int = typer.Option(64, "--batch-size", help="Samples per step."),
    lr: float = typer.Option(1e-3, "--lr", help="Learning rate (Adam) of every party."),
    embedding_dim: int = typer.Option(None, "--embedding-dim",
                                      help="Width of each party's embedding (default 16; with --top-model sum the "
                                           "label party's output count, which is the only width allowed)."),
    hidden: int = typer.Option(64, help="Width of the bottom and top MLPs."),
    top_model: str = typer.Option("mlp", "--top-model",
                                  help="Top model of the label party: mlp | linear | sum (aggregation VFL: each party "
                                        "outputs the logits, the label party adds them; nothing trainable)."),
    seed: int = typer.Option(0, help="Seed of the split, the initialisation, the batches and the defences."),
    local_steps: int = typer.Option(1, "--local-steps",
                                    help="FedBCD: updates per exchange; every party reuses what it last received "
                                         "for Q-1 more updates of the same batch (Q times fewer round trips)."),
    label_defense: str = typer.Option(None, "--label-defense",
                                      help="Label-DP mechanism applied once to the labels: {label_defenses} "
                                           "(`fedsim defenses` shows their parameters)."),
    gradient_defense: str = typer.Option(None, "--gradient-defense",
                                         help="Defence applied to every cut gradient: {gradient_defenses}."),
    epsilon: float = typer.Option(None, help="Privacy budget of the defence (needs --label-defense or "
                                             "--gradient-defense)."),
    delta: float = typer.Option(None, help="delta of the defence or of top-model DP-SGD (0 < delta < 1)."),
    defense_param: list[str] = typer.Option(None, "--defense-param",
                                            help="A defence parameter KEY=VALUE, repeatable (e.g. low=0 high=400; "
                                                 "top_dp_epsilon=EPS adds DP-SGD on the top model)."),
    transcript: Path = typer.Option(None, help="Save every feature party's transcript to this new folder "
                                               "(input of `fedsim attack`)."),
    record_last_epochs: int = typer.Option(None, "--record-last-epochs",
                                           help="Keep only the last E epochs in the transcript."),
    stream: bool = typer.Option(False, "--stream", help="Write transcript rows to disk as they come (needs "
                                                        "--transcript)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing --transcript folder."),
    malicious_update_scale: float = typer.Option(1.0, "--malicious-update-scale",
                                                 help="Feature party --malicious-party multiplies every step of "
                                                      "its bottom model by this (Fu et al.'s active attack)."),
    malicious_party: int = typer.Option(0, "--malicious-party", help="Which feature party scales its steps."),
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
    config = train_config(dataset, data, target, id_column, rows, task, parties, partition, runtime, epochs,
                          batch_size, lr, embedding_dim, hidden, top_model, seed, local_steps, label_defense,
                          gradient_defense, epsilon, delta, defense_param, record_last_epochs,
                          label_party_features=label_party_features, malicious_party=malicious_party,
                          malicious_update_scale=malicious_update_scale)
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
