"""Bottom and top models of the split network."""

from __future__ import annotations

import torch
from torch import nn

from fedsim.config import ModelConfig


def mlp(in_dim: int, hidden: int, depth: int, out_dim: int) -> nn.Sequential:
    """`depth` hidden ReLU layers of width `hidden`, then a linear output layer (depth 0 = linear)."""
    layers: list[nn.Module] = []
    width = in_dim
    for _ in range(depth):
        layers += [nn.Linear(width, hidden), nn.ReLU()]
        width = hidden
    layers.append(nn.Linear(width, out_dim))
    return nn.Sequential(*layers)


class TopModel(nn.Module):
    """The label party's model on the concatenated embeddings.

    Its output is `offset + scale * net(h)`, with offset/scale the mean/std of the training targets the
    label party holds (after any label defence, so they are post-processing of the released labels).
    Under Adam this trains like a model on standardised targets, while the loss, and hence every cut
    gradient, stays in the labels' own units: what an attacker reasons about.
    """

    def __init__(self, net: nn.Module, offset: torch.Tensor, scale: torch.Tensor) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("offset", offset.clone().float())
        self.register_buffer("scale", scale.clone().float())

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.offset + self.scale * self.net(h)


def build_bottom_model(in_dim: int, config: ModelConfig) -> nn.Module:
    return mlp(in_dim, config.bottom_hidden, config.bottom_depth, config.embedding_dim)


class SumNet(nn.Module):
    """Aggregation VFL (`--top-model sum`): the label party adds the parties' outputs, each `out_dim` wide (the
    class logits, or the regression/binary outputs); nothing trainable. The cut gradient of every party is then
    the loss's gradient in the logits itself (softmax - onehot for cross-entropy), as in VFLAIR's setting."""

    def __init__(self, out_dim: int) -> None:
        super().__init__()
        self.out_dim = out_dim

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h.reshape(len(h), -1, self.out_dim).sum(dim=1)


def build_top_net(in_dim: int, out_dim: int, config: ModelConfig) -> nn.Module:
    if config.top_model == "sum":
        return SumNet(out_dim)
    if config.top_model == "linear":
        return nn.Linear(in_dim, out_dim)
    return mlp(in_dim, config.top_hidden, config.top_depth, out_dim)


def torch_seed(entropy: int | list[int]) -> int:
    """The 32-bit torch seed of a seed-sequence entropy list: what a model's initial weights are drawn from.

    A party can be sent this number instead of the entropy (fedsim.parties.FeaturePartySetup): it is a hash
    of the entropy, so the run's seed stays with the label party."""
    import numpy as np

    return int(np.random.SeedSequence(entropy).generate_state(1)[0])


def seeded_init(seed: int | list[int], build):
    """Build a model with parameters drawn from a private torch generator state (global state untouched)."""
    return init_from_torch_seed(torch_seed(seed), build)


def init_from_torch_seed(seed: int, build):
    """Build a model with its parameters drawn after `torch.manual_seed(seed)`, the global state untouched."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()
