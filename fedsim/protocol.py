"""The label party's two hook points, filled by `defenses/`: a label transform (once) and a gradient
transform (every outgoing cut gradient, and the label party's training objective). The defaults do nothing."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from fedsim.privacy.claims import PrivacyClaim


@dataclass(frozen=True)
class TrainingPlan:
    """What the label party knows before training: used by defences to calibrate noise to a budget."""

    task: str
    n_train: int
    batch_size: int
    epochs: int
    steps_per_epoch: int
    parties: int
    embedding_dims: tuple[int, ...]
    n_classes: int = 0  # K of a multiclass task (its top model's logits); 2 binary, 0 regression


@dataclass(frozen=True)
class GradientContext:
    """Where an outgoing gradient goes: which feature party, which step, which samples and their targets."""

    party: int
    epoch: int
    step: int
    rows: torch.Tensor  # positions of the batch's samples in the training table
    targets: torch.Tensor  # the label party's (possibly randomised) targets for the batch, (B, k)
    batch_size: int


@dataclass(frozen=True)
class PendingLabels:
    """Labels a two-stage label defence (LP-2ST, `rr_with_prior`) releases during training, not in `apply`.

    Until step `at` (epoch, step within epoch) the label party trains on `rows` with loss weight 0 (their
    targets are placeholders: a zero loss term sends zero cut gradient, so nothing about their labels reaches
    anyone) and keeps their latest embeddings; at `at` it calls `release` once with the split model's class
    probabilities for them, (len(rows), K), uniform for a row not yet seen, and trains on every row from then.
    """

    rows: np.ndarray  # positions in the training table
    at: tuple[int, int]
    release: Callable[[np.ndarray], np.ndarray]  # class probabilities -> the rows' released labels


class LabelTransform:
    """Applied once to the training labels before training; the label party then sees only its output."""

    name = "none"

    def apply(self, y: np.ndarray, task: str, rng: np.random.Generator) -> np.ndarray:
        """Return training targets, shape (n,) or (n, k); the default is the identity."""
        return y

    @property
    def prediction_column(self) -> int:
        """Which output column of the top model predicts the label (k > 1 for label extension)."""
        return 0

    def pending(self, plan: TrainingPlan) -> PendingLabels | None:
        """Labels `apply` left for the label party to release during training; None: `apply` released all."""
        return None

    def privacy(self) -> PrivacyClaim | None:
        return None


class GradientTransform:
    """Applied by the label party to each outgoing cut-layer gradient (B, d); the default is the identity."""

    name = "none"

    def prepare(self, plan: TrainingPlan, rng: np.random.Generator) -> None:
        """Called once before training, e.g. to calibrate noise to a target epsilon."""

    def __call__(self, grad: torch.Tensor, context: GradientContext) -> torch.Tensor:
        return grad

    def wrap_top_model(self, model: nn.Module, in_dim: int, plan: TrainingPlan,
                       rng: np.random.Generator) -> nn.Module:
        """The module the label party trains and predicts with on the concatenated embeddings (`in_dim` wide,
        the label party's own block included), built once before its optimizer (so added layers train with
        the top model); the default is the top model."""
        return model

    def training_loss(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, rows: torch.Tensor,
                      loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> torch.Tensor:
        """The label party's objective on one batch (`inputs`: the concatenated embeddings, with gradient;
        `rows`: the batch's positions in the training table); its gradient with respect to the embeddings is
        the cut gradient and it trains the top model. The default is the task loss on the targets."""
        return loss_fn(model(inputs), targets)

    def target_normalization(self, targets: np.ndarray,
                             rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray] | None:
        """The top model's (offset, scale) when they must not come from the targets in the clear; None keeps
        the targets' own mean and standard deviation."""
        return None

    def privatize_top_model(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, plan: TrainingPlan,
                            rng: np.random.Generator) -> torch.optim.Optimizer | None:
        """A private optimizer for the top model when this defence's budget covers it; None leaves it as is."""
        return None

    def privacy(self) -> PrivacyClaim | None:
        return None
