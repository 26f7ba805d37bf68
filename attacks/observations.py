"""Shared machinery: a transcript flattened into per-row tensors, the known/unknown split, surrogate top models.

Every recorded row is one (step, sample): the embedding h the feature party sent, the gradient G it
received and 1/B of its step. Under a mean-reduced loss each gradient row depends only on its own
sample (G_r = (1/B) dl(g(h_r), y)/dh_r), so attacks can process rows in any grouping: they work on
minibatches of samples, gathering each sample's rows across the selected epochs at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from pydantic import Field
from torch import nn

from fedsim.attacks.base import AttackerKnowledge
from fedsim.errors import UserError, check
from fedsim.models import mlp
from fedsim.params import Epochs, Integer, PluginParams
from fedsim.rundir import PartyView
from fedsim.transcript import EpochTranscript


class EpochParams(PluginParams):
    """The parameter of attacks that only choose which recorded epochs to read."""

    epochs: Epochs = Field("last", description="Recorded epochs the attack uses: last, all, or the last N.")


def select_epochs(view: PartyView, spec: str | int) -> list[EpochTranscript]:
    """The recorded epochs an attack uses: 'last', 'all' or the last `spec` (at most all recorded)."""
    epochs = view.transcript.epochs
    check(len(epochs) > 0, "the transcript holds no recorded epoch")
    if spec == "all":
        return list(epochs)
    if spec == "last":
        return list(epochs[-1:])
    return list(epochs[-int(spec):])  # fewer recorded than asked: all of them (`epochs_used` says which)


@dataclass
class Observations:
    """The selected epochs' rows as tensors, plus `table[i, e]`: the row of sample i in selected epoch e."""

    h: torch.Tensor  # (R, d) embeddings as sent
    g: torch.Tensor  # (R, d) gradients as received
    inv_b: torch.Tensor  # (R,) 1 / batch size of the row's step
    sample: torch.Tensor  # (R,) position of the row's sample in view.sample_ids
    step: torch.Tensor  # (R,) step index over the selected epochs (0..steps-1)
    progress: torch.Tensor  # (R,) training progress of the step in (0, 1]
    table: torch.Tensor  # (N, E) row index per sample and selected epoch, -1 if absent
    epochs_used: list[int]
    steps: int
    grad_scale: float  # mean squared gradient norm over the rows (normalises gradient distances)

    @property
    def n_epochs(self) -> int:
        return self.table.shape[1]


def observe(view: PartyView, spec: str | int) -> Observations:
    epochs = select_epochs(view, spec)
    steps_per_epoch = max(int(e.steps.max()) + 1 for e in epochs if len(e.steps))
    total_epochs = view.public.epochs
    total_steps = max(total_epochs, epochs[-1].epoch + 1) * steps_per_epoch
    n = len(view.sample_ids)
    table = np.full((n, len(epochs)), -1, dtype=np.int64)
    parts: dict[str, list[np.ndarray]] = {"h": [], "g": [], "inv_b": [], "sample": [], "step": [], "progress": []}
    offset_rows = offset_steps = 0
    for k, epoch in enumerate(epochs):
        steps = np.asarray(epoch.steps, dtype=np.int64)
        counts = np.bincount(steps)
        positions = view.rows_of(np.asarray(epoch.batch_ids))
        table[positions, k] = offset_rows + np.arange(len(steps))
        parts["h"].append(np.asarray(epoch.embeddings, dtype=np.float32))
        parts["g"].append(np.asarray(epoch.gradients, dtype=np.float32))
        parts["inv_b"].append((1.0 / counts[steps]).astype(np.float32))
        parts["sample"].append(positions)
        parts["step"].append(offset_steps + steps)
        parts["progress"].append(((epoch.epoch * steps_per_epoch + steps + 1) / total_steps).astype(np.float32))
        offset_rows += len(steps)
        offset_steps += len(counts)
    arrays = {k: torch.from_numpy(np.concatenate(v)) for k, v in parts.items()}
    g = arrays["g"]
    scale = float((g.double() ** 2).sum(1).mean())
    check(np.isfinite(scale), "the transcript's gradients are not finite")
    return Observations(
        h=arrays["h"], g=g, inv_b=arrays["inv_b"], sample=arrays["sample"], step=arrays["step"],
        progress=arrays["progress"], table=torch.from_numpy(table), epochs_used=[e.epoch for e in epochs],
        steps=offset_steps, grad_scale=scale if scale > 0 else 1.0,
    )


@dataclass
class Split:
    """Known and unknown samples as positions in view.sample_ids, and the known labels' scale."""

    known: np.ndarray
    unknown: np.ndarray
    known_labels: np.ndarray
    mean: float
    std: float


def split_known(view: PartyView, knowledge: AttackerKnowledge, task: str) -> Split:
    known = view.rows_of(np.asarray(knowledge.known_ids, dtype=np.int64)) if len(knowledge.known_ids) else \
        np.zeros(0, dtype=np.int64)
    mask = np.zeros(len(view.sample_ids), dtype=bool)
    mask[known] = True
    labels = np.asarray(knowledge.known_labels, dtype=np.float64)
    mean, std = 0.0, 1.0  # binary labels, or nothing known: unit scale
    if task == "regression" and len(labels) >= 2:
        mean, std = float(labels.mean()), float(labels.std())
        std = std if std > 0 else max(abs(mean), 1.0)
    elif task == "regression" and knowledge.label_range is not None:
        low, high = knowledge.label_range
        mean, std = (low + high) / 2, max((high - low) / 4, 1e-12)
    elif task == "regression" and len(labels):
        mean, std = float(labels[0]), max(abs(float(labels[0])), 1.0)
    return Split(known, np.flatnonzero(~mask), labels, mean, std)


class Surrogate(nn.Module):
    """The attacker's top model: `mean + std * net(h [, progress])`, in label units like the real TopModel."""

    def __init__(self, net: nn.Module, mean: float, std: float, timed: bool) -> None:
        super().__init__()
        self.net, self.mean, self.std, self.timed = net, mean, std, timed

    def forward(self, h: torch.Tensor, progress: torch.Tensor | None = None) -> torch.Tensor:
        if self.timed:
            t = torch.ones(len(h), 1) if progress is None else progress.reshape(-1, 1)
            h = torch.cat([h, t], dim=1)
        return self.mean + self.std * self.net(h).squeeze(-1)


class SurrogateParams(PluginParams):
    """The attacker's surrogate top model; the attacker's architecture guess fills what is not given."""

    surrogate: Literal["mlp", "linear"] = Field("mlp", description="Surrogate top model architecture.")
    hidden: Integer = Field(64, ge=1, description="Hidden width of the MLP surrogate.")
    depth: Integer = Field(1, ge=0, description="Hidden layers of the MLP surrogate.")


def build_surrogate(
    in_dim: int, params: SurrogateParams, explicit: set[str], knowledge: AttackerKnowledge, split: Split,
    seed: int, timed: bool = False, out_dim: int = 1,
) -> Surrogate:
    """MLP/linear surrogate with `out_dim` outputs (K logits for multiclass); the attacker's architecture guess
    fills what the parameters leave unset."""
    kind, hidden, depth = params.surrogate, params.hidden, params.depth
    guess = knowledge.top_model_guess
    if guess is not None:
        kind = kind if "surrogate" in explicit else guess.top_model
        hidden = hidden if "hidden" in explicit else guess.top_hidden
        depth = depth if "depth" in explicit else guess.top_depth
    check(hidden >= 1, "surrogate hidden width must be >= 1")
    width = in_dim + int(timed)
    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(torch.randint(2**62, (1,), generator=generator)))
        net = nn.Linear(width, out_dim) if kind == "linear" else mlp(width, int(hidden), int(depth), out_dim)
    return Surrogate(net, split.mean, split.std, timed)


def value_and_input_grad(model: Surrogate, h: torch.Tensor, progress: torch.Tensor | None,
                         create_graph: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Surrogate outputs p (R,) and their gradients dp/dh (R, d), row by row.

    For the Linear/ReLU stacks the surrogates are made of, the input gradient is computed in closed form
    (W_1^T D_1 W_2^T ... w_out, D the ReLU masks) in the same graph as p: one backward pass trains through
    both, several times faster than autograd's double backward on small layers. Without `create_graph`
    the result is detached.
    """
    layers = list(model.net) if isinstance(model.net, nn.Sequential) else [model.net]
    with torch.set_grad_enabled(create_graph):
        x = h if not model.timed else torch.cat(
            [h, torch.ones(len(h), 1) if progress is None else progress.reshape(-1, 1)], dim=1)
        masks = []
        for layer in layers:
            if isinstance(layer, nn.ReLU):
                masks.append(x > 0)
                x = x * masks[-1]
            else:
                x = layer(x)
        p = model.mean + model.std * x.squeeze(-1)
        jac: torch.Tensor | None = None
        for layer in reversed(layers):
            if isinstance(layer, nn.ReLU):
                jac = jac * masks.pop()
            else:
                jac = layer.weight.expand(len(h), -1) if jac is None else jac @ layer.weight
        jac = model.std * jac[:, : h.shape[1]]
    return p, jac


def torch_seed(rng: np.random.Generator) -> int:
    return int(rng.integers(2**62))


def minibatches(items: np.ndarray, size: int, rng: np.random.Generator) -> list[np.ndarray]:
    order = rng.permutation(items)
    return [order[i : i + size] for i in range(0, len(order), max(size, 1))]


def require_task(task: str, allowed: tuple[str, ...], name: str) -> None:
    if task not in allowed:
        raise UserError(f"attack {name!r} supports tasks {', '.join(allowed)}; this transcript is {task}")
