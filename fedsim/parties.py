"""The two roles of split learning. Both runtimes (local, Flower) drive these same objects."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from fedsim.config import TrainConfig
from fedsim.models import build_bottom_model, seeded_init
from fedsim.privacy.dp_sgd import TopModelDP
from fedsim.protocol import GradientContext, GradientTransform
from fedsim.transcript import TranscriptRecorder


def make_optimizer(name: str, params, lr: float) -> torch.optim.Optimizer:
    # fused kernels: one call per optimizer instead of a Python loop over tensors (matters for small models)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, fused=True)
    return torch.optim.SGD(params, lr=lr, fused=True)


def build_feature_party_from_block(
    config: TrainConfig, index: int, features: np.ndarray, sample_ids: np.ndarray,
    recorder: TranscriptRecorder | None = None,
) -> FeatureParty:
    """Feature party `index` over its own feature block only (no dataset needed: a deployed node builds it from
    its cached block); its bottom model is seeded from the config, so every runtime builds the same party."""
    model = seeded_init([config.seed, 10, index], lambda: build_bottom_model(features.shape[1], config.model))
    return FeatureParty(index, features, sample_ids, model, make_optimizer(config.optimizer, model.parameters(),
                                                                           config.lr), recorder)


class FeatureParty:
    """Holds one block of feature columns and a bottom model; sends embeddings, applies returned gradients."""

    def __init__(
        self,
        index: int,
        features: np.ndarray,
        sample_ids: np.ndarray,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        recorder: TranscriptRecorder | None = None,
    ) -> None:
        self.index = index
        self.features = torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32))
        self.sample_ids = np.asarray(sample_ids, dtype=np.int64)
        self.model = model
        self.optimizer = optimizer
        self.recorder = recorder
        self._rows: np.ndarray | None = None
        self._output: torch.Tensor | None = None

    def forward(self, rows: np.ndarray) -> torch.Tensor:
        """Embeddings of the batch (the message sent to the label party); keeps the graph for backward."""
        self._rows = rows
        self._output = self.model(self.features[torch.from_numpy(rows)])
        return self._output.detach()

    def backward(self, gradient: torch.Tensor, epoch: int, step: int) -> None:
        """Apply the cut-layer gradient received for the last forward, update, and record what was seen."""
        assert self._output is not None and self._rows is not None, "backward before forward"
        self.optimizer.zero_grad(set_to_none=True)
        self._output.backward(gradient)
        self.optimizer.step()
        if self.recorder is not None:
            self.recorder.record(epoch, step, self.sample_ids[self._rows], self._output, gradient)
        self._output = None

    @torch.no_grad()
    def embed(self, features: np.ndarray) -> torch.Tensor:
        return self.model(torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32)))


class LabelParty:
    """Holds the (possibly randomised) training targets and the top model; computes the loss and cut gradients."""

    def __init__(
        self,
        targets: np.ndarray,
        task: str,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        gradient_transform: GradientTransform | None = None,
        prediction_column: int = 0,
        top_model_dp: TopModelDP | None = None,
    ) -> None:
        targets = np.asarray(targets, dtype=np.float32)
        self.targets = torch.from_numpy(targets.reshape(len(targets), -1).copy())
        self.task = task
        self.model = model
        self.optimizer = optimizer
        self.gradient_transform = gradient_transform or GradientTransform()
        self.prediction_column = prediction_column
        self.top_model_dp = top_model_dp  # Opacus DP-SGD on the top model to a target epsilon, reported apart
        self.loss_fn = nn.MSELoss() if task == "regression" else nn.BCEWithLogitsLoss()

    def train_step(self, rows: np.ndarray, embeddings: list[torch.Tensor], epoch: int, step: int) -> list[torch.Tensor]:
        """Loss on the concatenated embeddings, top-model update, one (defended) cut gradient per feature party."""
        inputs = [h.detach().requires_grad_(True) for h in embeddings]
        index = torch.from_numpy(rows)
        targets = self.targets[index]
        loss = self.loss_fn(self.model(torch.cat(inputs, dim=1)), targets)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return [
            self.gradient_transform(h.grad, GradientContext(party, epoch, step, index, targets, len(rows)))
            for party, h in enumerate(inputs)
        ]

    @torch.no_grad()
    def predict(self, embeddings: list[torch.Tensor]) -> np.ndarray:
        """Predictions for the label: the regression value, or the positive-class probability."""
        out = self.model(torch.cat(embeddings, dim=1))[:, self.prediction_column]
        if self.task == "binary":
            out = torch.sigmoid(out)
        return out.double().numpy()
