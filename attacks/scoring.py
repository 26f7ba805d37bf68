"""Shared read-out of the binary scoring attacks: per-row scores averaged per sample over the selected epochs."""

from __future__ import annotations

import numpy as np
import torch

from fedsim.attacks.observations import Observations


def per_sample(obs: Observations, row_score: torch.Tensor, samples: np.ndarray) -> np.ndarray:
    """Mean of each sample's row scores over the selected epochs."""
    n = len(obs.table)
    total = torch.zeros(n, dtype=torch.float64).index_add_(0, obs.sample, row_score.double())
    count = torch.zeros(n, dtype=torch.float64).index_add_(0, obs.sample, torch.ones(len(obs.sample),
                                                                                      dtype=torch.float64))
    return (total / count.clamp_min(1)).numpy()[samples]
