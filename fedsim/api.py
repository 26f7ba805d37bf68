"""fedsim's Python API: train, attack, audit, private AUC and grids, each one call returning a typed result.

The same computations as the `fedsim` commands (and the same JSON objects: every result has `to_json()`),
without the command line. `import fedsim` stays fast: `fedsim.train` and the others resolve to this module
on first use (`fedsim.__getattr__`); this module sits in the top layer because it reaches every layer
(docs/architecture.md). Guide: docs/python-api.md; a worked example: docs/tutorial.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fedsim.attacks import AttackerKnowledge, AttackResult
from fedsim.attacks.base import ParamValue
from fedsim.attacks.baselines import compute_references
from fedsim.attacks.evaluate import draw_known, run_attack, score_attack
from fedsim.audit import audit_auc
from fedsim.audit.api import AuditReport, audit
from fedsim.config import TrainConfig, validated
from fedsim.errors import check
from fedsim.evaluation import run_auc
from fedsim.experiments.runner import BenchSummary
from fedsim.experiments.runner import run_grid as _run_grid
from fedsim.run_result import TrainResult
from fedsim.training import train as _train

__all__ = ["AttackReport", "AucReport", "AuditReport", "BenchSummary", "TrainConfig", "TrainResult", "attack",
           "audit", "evaluate_auc", "run_grid", "train"]


@dataclass(frozen=True)
class AttackReport:
    """One attack on one feature party: the estimates, and (scored against the truth) their metrics.

    `metrics` is empty when no truth was given; `details` is the `fedsim attack --json` object.
    """

    estimates: AttackResult
    metrics: dict[str, float]
    details: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return self.details


@dataclass(frozen=True)
class AucReport:
    """One private AUC release (or R of them): the estimate in [0, 1], its 95% interval and the guarantee."""

    estimate: float
    ci95: tuple[float, float]
    n: int
    guarantee: str
    details: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return self.details


def train(config: TrainConfig | None = None, /, *, transcript: str | Path | None = None, overwrite: bool = False,
          show_progress: bool = False, **settings: Any) -> TrainResult:
    """Train a split model: a label party and K feature parties (`fedsim train`).

    Args:
        config: a full `TrainConfig`; or leave it out and give its fields as keyword arguments.
        transcript: save every feature party's transcript to this new folder (input of `fedsim attack`).
        overwrite: replace an existing `transcript` folder.
        show_progress: draw a progress bar.
        **settings: `TrainConfig` fields (dataset, parties, epochs, label_defense, epsilon, seed, ...); a bad
            value raises `fedsim.errors.UserError` with one line naming the field.

    Returns:
        The `TrainResult`: `metrics` (test set), `privacy` (the claim), `party_view(k)` (what party k saw),
        `to_json()` (the `fedsim train --json` object).

    Examples:
        >>> import fedsim
        >>> run = fedsim.train(dataset="diabetes", epochs=2, seed=1)
        >>> sorted(run.metrics)
        ['mae', 'mse', 'r2', 'rmse']
        >>> run.privacy.epsilon is None  # no defence, no guarantee
        True
    """
    check(config is None or not settings, "give either a TrainConfig or its fields as keyword arguments, not both")
    config = validated(TrainConfig, **settings) if config is None else config
    return _train(config, transcript_dir=None if transcript is None else Path(transcript), overwrite=overwrite,
                  show_progress=show_progress)


def attack(run: TrainResult, name: str, *, party: int = 0, known_fraction: float | None = None,
           known: int | None = None, params: dict[str, ParamValue] | None = None, seed: int = 0,
           references: bool = True, show_progress: bool = False) -> AttackReport:
    """Play the curious feature party `party` of a training run and score its label estimates (`fedsim attack`).

    The attacker knows a seeded draw of the training labels (`known_fraction`, or `known` of them); the
    known samples are never scored.

    Args:
        run: the result of `fedsim.train`.
        name: the attack (`fedsim attacks` lists them: lba, residual, norm, cosine, spectral, ...).
        party: which feature party attacks (0..K-1).
        known_fraction: fraction of the training labels the attacker knows (default 0.01, at least 10).
        known: the number of known labels instead (0 for attacks that need none).
        params: the attack's parameters (`fedsim attacks` shows them).
        seed: seed of the known-label draw and of the attack.
        references: also score the reference predictors (features and known labels only, no transcript) on the
            same samples and report the attack's `advantage` over the best of them (seconds more).
        show_progress: draw a progress bar.

    Returns:
        An `AttackReport`: `metrics` of the estimates on the attacked samples, the `estimates` themselves, and
        `details` (the `fedsim attack --json` object).

    Examples:
        >>> import fedsim
        >>> run = fedsim.train(dataset="diabetes", epochs=2, seed=1)
        >>> report = fedsim.attack(run, "residual", references=False)
        >>> report.details["n_attacked"] + report.details["known_labels"] == run.dataset.n_train
        True
        >>> 0.0 <= report.metrics["spearman"] <= 1.0
        True
    """
    check(known_fraction is None or known is None, "give either known_fraction or known, not both")
    check(0 <= party < run.dataset.parties, f"party must be in 0..{run.dataset.parties - 1}, got {party}")
    view = run.party_view(party)
    y_true = run.dataset.y_train
    fraction = 0.01 if known_fraction is None and known is None else known_fraction
    knowledge: AttackerKnowledge = draw_known(view, y_true, fraction, known, seed)
    estimates, details = run_attack(view, name, params, knowledge, seed, show_progress)
    details.update(score_attack(view, estimates, y_true, knowledge,
                                compute_references(view, knowledge, seed) if references else None))
    return AttackReport(estimates, details["metrics"], details)


def evaluate_auc(scores: Any, labels: Any, method: str = "hist", epsilon: float | None = 1.0, *,
                 repeats: int = 1, seed: int = 0, audit: bool = False, **options: Any) -> AucReport:
    """The AUC of scores against labels the score holder may not see in the clear (`fedsim auc`).

    Args:
        scores: one score per example (array-like of numbers).
        labels: the binary labels (0/1), held by the label holder.
        method: exact, naive_rr, rr, dpauc, hist, hist_gauss or scalar_laplace (`fedsim auc --help`).
        epsilon: the label-DP budget of the release (None for exact).
        repeats: R > 1 releases: `details` adds bias, std, RMSE and the 95% interval's coverage.
        seed: seed of the release noise.
        audit: instead, audit the method (`fedsim audit auc`): `details` holds the empirical epsilon.
        **options: further `fedsim auc` settings (delta, buckets, thresholds, clients, split, ...).

    Returns:
        An `AucReport`: the `estimate` (clipped to [0, 1]), its `ci95`, `n`, the `guarantee` sentence, and
        `details` (the `fedsim auc --json` object, or the audit's).

    Examples:
        >>> import numpy as np, fedsim
        >>> rng = np.random.default_rng(0)
        >>> labels = rng.integers(0, 2, 2000)
        >>> scores = labels + rng.normal(0, 1, 2000)
        >>> report = fedsim.evaluate_auc(scores, labels, "hist", epsilon=1.0, show_progress=False)
        >>> report.ci95[0] <= report.estimate <= report.ci95[1]
        True
        >>> abs(report.estimate - 0.76) < 0.05
        True
    """
    scores, labels = np.asarray(scores), np.asarray(labels)
    if audit:
        details = audit_auc(method, scores, labels, epsilon, seed=seed, **options)
        return AucReport(float("nan"), (float("nan"), float("nan")), details["n"], details["guarantee"], details)
    details = run_auc(method, scores, labels, epsilon, repeats=repeats, seed=seed, **options)
    low, high = details["ci95"]
    return AucReport(details["estimate"], (low, high), details["n"], details["guarantee"], details)


def run_grid(grid: str | Path, out: str | Path, workers: int = 1, show_progress: bool = False) -> BenchSummary:
    """Run an experiment grid, resumably (`fedsim bench`); `fedsim report OUT` then writes its report.

    Args:
        grid: a grid TOML file or a shipped grid's name (quick, regression_leakage, dp_auc).
        out: the output folder; a second call resumes (finished cells are skipped).
        workers: parallel cells as Ray tasks; 1 runs in this process without Ray.
        show_progress: draw a progress bar.

    Returns:
        A `BenchSummary`: cells computed, skipped and failed, and the `results` table's path
        (OUT/results.parquet, one row per cell and attack).

    Examples:
        >>> import fedsim, pathlib, tempfile
        >>> grid = pathlib.Path(tempfile.mkdtemp()) / "tiny.toml"
        >>> _ = grid.write_text('''
        ... name = "tiny"
        ... [leakage]
        ... datasets = ["diabetes"]
        ... attacks = ["residual"]
        ... [leakage.training]
        ... epochs = 1
        ... [[leakage.defenses]]  # an empty entry: no defence
        ... ''')
        >>> summary = fedsim.run_grid(grid, grid.parent / "out")
        >>> summary.cells, summary.failed
        (1, 0)
    """
    return _run_grid(grid, Path(out), workers, None, show_progress=show_progress)
