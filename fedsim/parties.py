"""The two roles of split learning. Both runtimes (local, Flower) drive these same objects."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from fedsim.errors import UserError
from fedsim.models import build_bottom_model, init_from_torch_seed
from fedsim.privacy.dp_sgd import TopModelDP
from fedsim.protocol import GradientContext, GradientTransform, PendingLabels
from fedsim.rundir import PublicRunFacts
from fedsim.transcript import Recorder


def make_optimizer(name: str, params, lr: float) -> torch.optim.Optimizer:
    # fused kernels: one call per optimizer instead of a Python loop over tensors (matters for small models)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, fused=True)
    return torch.optim.SGD(params, lr=lr, fused=True)


# The label party's loss per task, reduction "mean" over the batch (named by fedsim.run_result.loss_name).
LOSSES: dict[str, type[nn.Module]] = {
    "regression": nn.MSELoss, "binary": nn.BCEWithLogitsLoss, "multiclass": nn.CrossEntropyLoss,
}


def target_tensor(targets: np.ndarray, task: str) -> torch.Tensor:
    """The training targets as the loss takes them: (n, m) float32 columns (regression, binary), or for
    multiclass (n,) int64 class indices or (n, K) float32 class-probability rows (soft labels, which
    `nn.CrossEntropyLoss` accepts as well)."""
    targets = np.asarray(targets)
    if task == "multiclass" and (targets.ndim == 1 or targets.shape[1] == 1):
        return torch.from_numpy(targets.reshape(-1).astype(np.int64))
    targets = targets.astype(np.float32)
    return torch.from_numpy(targets.reshape(len(targets), -1).copy())


class FeaturePartySetup(BaseModel):
    """What feature party `index` is told before training (the Flower setup message; the local runtime builds
    its parties from the same object): the run's public facts and its own model's settings, nothing else.

    Never the seed or a label-party setting (top model, private defence parameters, the label party's
    columns): the bottom model's initial weights come from `init_seed`, the torch seed the label party derives
    from `[seed, Stream.BOTTOM_INIT, index]` (fedsim.models.torch_seed): a 32-bit hash, so a small seed can
    still be found by trying values (as from the split in the sample ids), but the seed alone no longer gives
    the label party's streams (fedsim.streams.secret_key also hashes every training label). The party's data
    (its feature block and the train sample ids) travels beside it, cut by the label party.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    index: int = Field(ge=0)
    public: PublicRunFacts
    init_seed: int = Field(ge=0, lt=2**32)
    optimizer: Literal["adam", "sgd"]
    lr: float = Field(gt=0)
    record_last_epochs: int | None = Field(default=None, ge=1)
    impute: Literal["mean", "median", "drop"] | None = None  # per-party files: missing values in its own file


def build_feature_party_from_block(
    setup: FeaturePartySetup, features: np.ndarray, sample_ids: np.ndarray, recorder: Recorder | None = None,
) -> FeatureParty:
    """The feature party of `setup` over its own feature block only (no dataset needed: a deployed node builds
    it from the block it was sent); every runtime builds it from the same setup, so it is the same party."""
    public = setup.public
    model = init_from_torch_seed(setup.init_seed,
                                 lambda: build_bottom_model(features.shape[1], public.bottom_model.model()))
    optimizer = make_optimizer(setup.optimizer, model.parameters(), setup.lr)
    scale = public.malicious_update_scale if setup.index == public.malicious_party else 1.0
    return FeatureParty(setup.index, features, sample_ids, model, optimizer, recorder, update_scale=scale,
                        local_steps=public.local_steps)


def check_finite_loss(loss: torch.Tensor, epoch: int, step: int) -> None:
    """Stop a diverged run at the step where it diverged: a NaN/inf loss would poison every parameter and
    surface later as a traceback in the metrics (or as a silently meaningless transcript)."""
    if not bool(torch.isfinite(loss.detach())):
        raise UserError(f"training diverged: the loss is {loss.item()} at epoch {epoch} step {step}; "
                        "lower --lr (or --malicious-update-scale), or scale the features")


def check_finite_parameters(models: list[nn.Module]) -> None:
    """After the last step (whose loss was finite), the update it made may still have overflowed."""
    for model in models:
        if not all(bool(torch.isfinite(p.detach()).all()) for p in model.parameters()):
            raise UserError("training diverged: the last update made a parameter non-finite; lower --lr "
                            "(or --malicious-update-scale), or scale the features")


class FeatureParty:
    """Holds one block of feature columns and a bottom model; sends embeddings, applies returned gradients."""

    def __init__(
        self,
        index: int,
        features: np.ndarray,
        sample_ids: np.ndarray,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        recorder: Recorder | None = None,
        update_scale: float = 1.0,
        local_steps: int = 1,
    ) -> None:
        """`update_scale` is the party's own choice of step size: every step of its optimizer is multiplied by
        it (its learning rate is; exact for Adam and SGD). A malicious party picks > 1 to make the top model
        lean on its features (Fu et al.'s active model completion); the run config records it."""
        self.index = index
        for group in optimizer.param_groups:
            group["lr"] *= update_scale
        self.local_steps = local_steps  # FedBCD: updates per received gradient
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
        for _ in range(self.local_steps - 1):  # FedBCD: more updates of the same batch from the stale gradient
            self.optimizer.zero_grad(set_to_none=True)
            self.model(self.features[torch.from_numpy(self._rows)]).backward(gradient)
            self.optimizer.step()
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
        optimizer: torch.optim.Optimizer | None,
        gradient_transform: GradientTransform | None = None,
        prediction_column: int = 0,
        top_model_dp: TopModelDP | None = None,
        own: FeatureParty | None = None,
        local_steps: int = 1,
        pending: PendingLabels | None = None,
    ) -> None:
        self.targets = target_tensor(targets, task)
        self.task = task
        self.model = model
        self.optimizer = optimizer  # None: nothing to train (`--top-model sum` without defence layers)
        self.gradient_transform = gradient_transform or GradientTransform()
        self.prediction_column = prediction_column
        self.top_model_dp = top_model_dp  # Opacus DP-SGD on the top model to a target epsilon, reported apart
        self.loss_fn = LOSSES[task]()
        # the label party's own feature block and bottom model (--label-party-features): its embeddings join the
        # feature parties' (last) before the top model; they and their gradients never leave the label party
        self.own = own
        self.local_steps = local_steps  # FedBCD: top-model updates per received set of embeddings
        # a two-stage label defence's unreleased rows (`PendingLabels`): which, and their latest inputs (lazily)
        self.pending = pending
        self._held = torch.zeros(len(self.targets), dtype=torch.bool)
        if pending is not None:
            self._held[torch.from_numpy(pending.rows)] = True
        self._latest: torch.Tensor | None = None
        self._seen = torch.zeros(len(self.targets), dtype=torch.bool)

    def loss(self, rows: np.ndarray, embeddings: list[torch.Tensor], epoch: int,
             step: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The batch's training loss on the concatenated embeddings (the gradient defence may add terms);
        also returns the row index and the targets."""
        index = torch.from_numpy(rows)
        inputs = torch.cat(embeddings, dim=1)
        loss_fn = self.loss_fn if self.pending is None else self._stage_one(self.pending, index, inputs, epoch, step)
        targets = self.targets[index]
        loss = self.gradient_transform.training_loss(self.model, inputs, targets, index, loss_fn)
        return loss, index, targets

    def _stage_one(self, pending: PendingLabels, index: torch.Tensor, inputs: torch.Tensor, epoch: int,
                   step: int) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        """Before `pending.at`: keep the held rows' latest inputs and weight their loss 0 (the mean runs over
        the released rows); at `pending.at`: release their labels and return the plain loss."""
        if (epoch, step) >= pending.at:
            self._release(pending)
            return self.loss_fn
        held = self._held[index]
        if self._latest is None:
            self._latest = torch.zeros(len(self.targets), inputs.shape[1])
        self._latest[index[held]] = inputs.detach()[held]
        self._seen[index[held]] = True
        weights = (~held).to(inputs.dtype)
        per_row = LOSSES[self.task](reduction="none")

        def weighted(output: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
            losses = per_row(output, targets).reshape(len(weights), -1).mean(dim=1)
            return (losses * weights).sum() / weights.sum().clamp(min=1.0)

        return weighted

    @torch.no_grad()
    def _release(self, pending: PendingLabels) -> None:
        """The held rows' labels from the two-stage defence, given the model's probabilities on their latest
        inputs (uniform for a row never seen); from now on every row trains with its released label."""
        rows = torch.from_numpy(pending.rows)
        assert self._latest is not None, "the release comes after at least one stage-1 step"
        probabilities = self._class_probabilities(self._latest[rows])
        unseen = ~self._seen[rows].numpy()
        probabilities[unseen] = 1.0 / probabilities.shape[1]
        labels = pending.release(probabilities)
        self.targets[rows] = target_tensor(labels, self.task)
        self.pending, self._latest = None, None

    def _class_probabilities(self, inputs: torch.Tensor) -> np.ndarray:
        """(n, K) class probabilities of the model on concatenated inputs (binary: 1 - p, p)."""
        p = self._predict_inputs(inputs)
        return p if self.task == "multiclass" else np.stack([1 - p, p], axis=1)

    def defend(self, cut_gradients: list[torch.Tensor], index: torch.Tensor, targets: torch.Tensor, epoch: int,
               step: int) -> list[torch.Tensor]:
        """The gradients the feature parties receive: the gradient transform applied to each cut gradient."""
        return [self.gradient_transform(g, GradientContext(party, epoch, step, index, targets, len(index)))
                for party, g in enumerate(cut_gradients)]

    def train_step(self, rows: np.ndarray, embeddings: list[torch.Tensor], epoch: int, step: int) -> list[torch.Tensor]:
        """Loss on the concatenated embeddings, top-model update, one (defended) cut gradient per feature party."""
        own = [self.own.forward(rows)] if self.own is not None else []
        inputs = [h.detach().requires_grad_(True) for h in [*embeddings, *own]]
        stale = [h.detach() for h in inputs]
        loss, index, targets = self.loss(rows, inputs, epoch, step)
        check_finite_loss(loss, epoch, step)
        self._update(loss)
        if self.own is not None:  # its own bottom model's update: undefended, nothing is sent
            self.own.backward(inputs.pop().grad, epoch, step)
        gradients = self.defend([h.grad for h in inputs], index, targets, epoch, step)
        for _ in range(self.local_steps - 1 if self.optimizer is not None else 0):  # FedBCD: more top updates
            self._update(self.loss(rows, stale, epoch, step)[0])  # from the same (stale) embeddings
        return gradients

    def _update(self, loss: torch.Tensor) -> None:
        """Backward through the loss (the cut gradients land on the inputs) and one top-model step, if any."""
        if self.optimizer is not None:
            self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.optimizer is not None:
            self.optimizer.step()

    @torch.no_grad()
    def predict(self, embeddings: list[torch.Tensor], own_features: np.ndarray | None = None) -> np.ndarray:
        """Predictions for the label: the regression value, the positive-class probability, or (multiclass) the
        (n, K) class probabilities. `own_features`: the same rows of the label party's own block, if it has one."""
        assert (self.own is None) == (own_features is None), "own features go with the label party's own block"
        own = [self.own.embed(own_features)] if self.own is not None else []
        return self._predict_inputs(torch.cat([*embeddings, *own], dim=1))

    @torch.no_grad()
    def _predict_inputs(self, inputs: torch.Tensor) -> np.ndarray:
        out = self.model(inputs)
        if self.task == "multiclass":
            return torch.softmax(out, dim=1).double().numpy()
        out = out[:, self.prediction_column]
        if self.task == "binary":
            out = torch.sigmoid(out)
        return out.double().numpy()
