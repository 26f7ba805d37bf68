"""Split training: determinism, equivalence with the monolithic model, transcripts."""

from __future__ import annotations

import numpy as np
import pytest
from fedsim_fixtures import small_config

from fedsim.metrics import regression_metrics
from fedsim.monolithic import predict_monolithic, train_monolithic
from fedsim.rundir import load_party_view, load_truth
from fedsim.training import train


def _assert_same_transcripts(a, b) -> None:
    assert len(a) == len(b)
    for ta, tb in zip(a, b, strict=True):
        assert ta.epoch_numbers == tb.epoch_numbers
        for ea, eb in zip(ta.epochs, tb.epochs, strict=True):
            for name in ("batch_ids", "steps", "embeddings", "gradients"):
                np.testing.assert_array_equal(getattr(ea, name), getattr(eb, name))


def test_same_seed_same_transcript_and_metrics(config):
    first, second = train(config), train(config)
    _assert_same_transcripts(first.transcripts, second.transcripts)
    assert first.metrics == second.metrics


def test_other_seed_other_transcript(config):
    a, b = train(config), train(config.model_copy(update={"seed": 1}))
    assert not np.array_equal(a.transcripts[0].epochs[0].batch_ids, b.transcripts[0].epochs[0].batch_ids)


def test_transcript_shapes_and_content(config):
    result = train(config)
    transcript = result.transcripts[1]
    assert transcript.epoch_numbers == [0, 1, 2]
    epoch = transcript.epochs[-1]
    n = result.dataset.n_train
    assert epoch.embeddings.shape == (n, 4) and epoch.gradients.shape == (n, 4)
    assert sorted(epoch.batch_ids.tolist()) == sorted(result.dataset.train_ids.tolist())
    steps = [s for s, _ in epoch.batches()]
    assert steps == list(range(-(-n // config.batch_size)))
    assert np.abs(epoch.gradients).sum() > 0


def test_split_matches_monolithic_model():
    """Per-parameter Adam makes split training the same computation as the monolithic model."""
    config = small_config(rows=1500, epochs=5)
    split = train(config, record=False)
    model = train_monolithic(config, split.dataset)
    mono = regression_metrics(split.dataset.y_test, predict_monolithic(model, split.dataset))
    assert split.metrics["mse"] == pytest.approx(mono["mse"], rel=1e-3)
    baseline = float(np.var(split.dataset.y_test))
    assert split.metrics["mse"] < 0.5 * baseline  # it actually learned


def test_binary_task_trains():
    result = train(small_config(dataset="breast_cancer", rows=None, epochs=5))
    assert result.dataset.task == "binary"
    assert result.metrics["auc"] > 0.9
    assert set(result.metrics) == {"auc", "accuracy", "log_loss"}


def test_record_last_epochs_in_memory_and_streamed(tmp_path, config):
    config = config.model_copy(update={"record_last_epochs": 2})
    memory = train(config)
    streamed = train(config, transcript_dir=tmp_path / "run", stream=True)
    assert memory.transcripts[0].epoch_numbers == [1, 2]
    _assert_same_transcripts(memory.transcripts, streamed.transcripts)
    assert sorted(p.name for p in (tmp_path / "run" / "party_0").glob("epoch_*")) == ["epoch_0001", "epoch_0002"]


def test_save_load_round_trip(tmp_path, config):
    result = train(config, transcript_dir=tmp_path / "run")
    for k in range(2):
        view = load_party_view(tmp_path / "run", k)
        _assert_same_transcripts([result.transcripts[k]], [view.transcript])
        np.testing.assert_array_equal(view.features, result.dataset.blocks[k].train)
        np.testing.assert_array_equal(view.embed().numpy(), result.party_view(k).embed().numpy())
        assert view.task == "regression" and view.batch_size == config.batch_size
    truth = load_truth(tmp_path / "run")
    np.testing.assert_array_equal(truth["y_train"], result.dataset.y_train)
    assert not list(tmp_path.glob(".*partial*"))  # staging folder renamed away


def test_linear_top_model_option():
    result = train(small_config(model={"top_model": "linear", "embedding_dim": 3}))
    assert result.label_party.model.net.__class__.__name__ == "Linear"
