"""One training run: dataset -> label defence -> parties -> runtime -> metrics, privacy claim, transcripts."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from fedsim.assembly import (
    build_feature_party,
    build_label_party,
    load_dataset,
    make_schedule,
    resolve_defenses,
    resolve_model,
)
from fedsim.config import TrainConfig
from fedsim.data import VerticalDataset
from fedsim.errors import check
from fedsim.fileio import check_output_dir, staged_directory
from fedsim.limits import check_memory
from fedsim.parties import check_finite_parameters
from fedsim.progress import progress_bar
from fedsim.protocol import GradientTransform, LabelTransform
from fedsim.run_result import TrainResult, finish_run, save_run
from fedsim.runtime.local import run_local
from fedsim.transcript import Transcript, TranscriptRecorder


def train(
    config: TrainConfig,
    transcript_dir: Path | None = None,
    overwrite: bool = False,
    stream: bool = False,
    record: bool = True,
    show_progress: bool = False,
    dataset: VerticalDataset | None = None,
    wrap_gradient: Callable[[GradientTransform], GradientTransform] | None = None,
) -> TrainResult:
    """Train once with the configured runtime; optionally save every feature party's transcript to a folder.

    `dataset` replaces the config's own (`load_dataset(config)`), e.g. with planted labels for an audit;
    `wrap_gradient` wraps the gradient defence (the white-box auditor's recorder; local runtime only).
    """
    if transcript_dir is not None:
        transcript_dir = Path(transcript_dir)
        check_output_dir(transcript_dir, overwrite)
    dataset = load_dataset(config) if dataset is None else dataset
    config = resolve_model(config, dataset)
    label_transform, gradient_transform = resolve_defenses(config, dataset.task)
    if wrap_gradient is not None:
        check(config.runtime == "local", "the white-box auditor records the label party in the local runtime only: "
                                         "use --runtime local")
        gradient_transform = wrap_gradient(gradient_transform)
    if config.runtime == "flower":
        from fedsim.runtime.flower import train_flower  # Flower and Ray load only when asked for (seconds)

        return train_flower(config, dataset, transcript_dir, overwrite, show_progress)
    if transcript_dir is None:
        return _train_local(config, dataset, label_transform, gradient_transform, None, stream=False,
                            record=record, show_progress=show_progress)
    with staged_directory(transcript_dir, overwrite) as staging:
        result = _train_local(config, dataset, label_transform, gradient_transform, staging, stream, True,
                              show_progress)
        save_run(result, staging, transcripts_written=stream)
    result.transcript_dir = transcript_dir
    if stream:  # the memory-mapped transcripts pointed into the staging folder
        result.transcripts = [Transcript.load(transcript_dir / f"party_{k}", k, mmap=True)
                              for k in range(dataset.parties)]
    return result


def _train_local(
    config: TrainConfig, dataset: VerticalDataset, label_transform: LabelTransform,
    gradient_transform: GradientTransform, staging: Path | None, stream: bool, record: bool, show_progress: bool,
) -> TrainResult:
    def recorder(k: int) -> TranscriptRecorder | None:
        if not record:
            return None
        folder = staging / f"party_{k}" if (stream and staging is not None) else None
        return TranscriptRecorder(k, config.model.embedding_dim, dataset.n_train, config.record_last_epochs, folder)

    if record and not stream:  # per kept epoch and row: an id, a step and two float32 vectors, per party
        kept = min(config.epochs, config.record_last_epochs or config.epochs)
        check_memory("--epochs", kept, dataset.parties * dataset.n_train * (12 + 8 * config.model.embedding_dim),
                     "the transcripts held in memory (--record-last-epochs E keeps fewer; --stream writes to disk)")
    recorders = [recorder(k) for k in range(dataset.parties)]
    feature_parties = [build_feature_party(config, dataset, k, recorders[k]) for k in range(dataset.parties)]
    label_party = build_label_party(config, dataset, label_transform, gradient_transform)
    schedule = make_schedule(config, dataset)
    start = time.perf_counter()
    with progress_bar(schedule.total_steps, f"training ({dataset.name})", show_progress) as advance:
        run_local(feature_parties, label_party, schedule, advance)
    check_finite_parameters([p.model for p in feature_parties] + [label_party.model])
    train_s = time.perf_counter() - start
    transcripts = [r.finish() for r in recorders if r is not None]
    return finish_run(config, dataset, feature_parties, label_party, label_transform, gradient_transform, train_s,
                      schedule.total_steps, transcripts)


