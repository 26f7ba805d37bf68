"""The same network trained as one monolithic PyTorch model: the reference that split training must match."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from fedsim.assembly import build_feature_party, build_label_party, make_schedule, resolve_defenses
from fedsim.config import TrainConfig
from fedsim.data import VerticalDataset
from fedsim.parties import make_optimizer
from fedsim.schedule import Schedule


class MonolithicModel(nn.Module):
    """Bottom models side by side, then the top model, in one module with one optimizer."""

    def __init__(self, bottoms: list[nn.Module], top: nn.Module) -> None:
        super().__init__()
        self.bottoms = nn.ModuleList(bottoms)
        self.top = top

    def forward(self, blocks: list[torch.Tensor]) -> torch.Tensor:
        return self.top(torch.cat([b(x) for b, x in zip(self.bottoms, blocks, strict=True)], dim=1))


def build_monolithic(config: TrainConfig, dataset: VerticalDataset) -> tuple[MonolithicModel, torch.Tensor, nn.Module]:
    """The split run's exact initial weights and targets, assembled as one model (no defences)."""
    label, gradient = resolve_defenses(config, dataset.task)
    bottoms = [build_feature_party(config, dataset, k).model for k in range(dataset.parties)]
    label_party = build_label_party(config, dataset, label, gradient)
    if label_party.own is not None:  # the label party's own bottom model comes last, as in the split run
        bottoms.append(label_party.own.model)
    return MonolithicModel(bottoms, label_party.model), label_party.targets, label_party.loss_fn


def blocks_of(dataset: VerticalDataset, split: str) -> list[np.ndarray]:
    """The feature blocks in the monolithic model's order: the feature parties', then the label party's own."""
    blocks = [*dataset.blocks, *([dataset.label_block] if dataset.label_block is not None else [])]
    return [getattr(b, split) for b in blocks]


class MonolithicTrainer:
    """The split run's network as one model with one Adam/SGD over all weights, ready to train."""

    def __init__(self, config: TrainConfig, dataset: VerticalDataset) -> None:
        self.model, self.targets, self.loss_fn = build_monolithic(config, dataset)
        self.optimizer = make_optimizer(config.optimizer, self.model.parameters(), config.lr)
        self.blocks = [torch.from_numpy(np.ascontiguousarray(b)) for b in blocks_of(dataset, "train")]

    def fit(self, schedule: Schedule) -> MonolithicModel:
        for _, _, rows in schedule.steps():
            index = torch.from_numpy(rows)
            loss = self.loss_fn(self.model([x[index] for x in self.blocks]), self.targets[index])
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
        return self.model


def train_monolithic(config: TrainConfig, dataset: VerticalDataset) -> MonolithicModel:
    """Train on the split run's schedule (same batches, same order)."""
    return MonolithicTrainer(config, dataset).fit(make_schedule(config, dataset))


@torch.no_grad()
def predict_monolithic(model: MonolithicModel, dataset: VerticalDataset, column: int = 0) -> np.ndarray:
    out = model([torch.from_numpy(b) for b in blocks_of(dataset, "test")])
    if dataset.task == "multiclass":
        return torch.softmax(out, dim=1).double().numpy()
    out = out[:, column]
    return (torch.sigmoid(out) if dataset.task == "binary" else out).double().numpy()
