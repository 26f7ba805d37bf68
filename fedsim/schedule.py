"""The seeded batch schedule: which training rows go into each step of each epoch."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from fedsim.streams import Stream


@dataclass(frozen=True)
class Schedule:
    """Every epoch visits every training row once, in a seeded order, in batches of `batch_size`."""

    n_rows: int
    batch_size: int
    epochs: int
    seed: int

    @property
    def steps_per_epoch(self) -> int:
        return -(-self.n_rows // self.batch_size)

    @property
    def total_steps(self) -> int:
        return self.epochs * self.steps_per_epoch

    def epoch_batches(self, epoch: int) -> list[np.ndarray]:
        order = np.random.default_rng([self.seed, Stream.BATCH_ORDER, epoch]).permutation(self.n_rows)
        return [order[i : i + self.batch_size] for i in range(0, self.n_rows, self.batch_size)]

    def steps(self) -> Iterator[tuple[int, int, np.ndarray]]:
        """(epoch, step within epoch, rows) for the whole training."""
        for epoch in range(self.epochs):
            for step, rows in enumerate(self.epoch_batches(epoch)):
                yield epoch, step, rows
