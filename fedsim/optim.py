"""Adam for the attacks' small fits, without `torch.optim.Optimizer`'s first-use cost.

`torch.optim.Optimizer` imports torch._dynamo (and sympy) the first time one is built, about 2 s on a
2-core machine: longer than a whole attack on a small transcript (`fedsim attack` on diabetes). This class
runs torch's own functional Adam (`torch.optim.adam.adam`, the computation `torch.optim.Adam` runs on CPU
with its default for-loop implementation) over the same per-parameter state, so its steps are bit-identical
to `torch.optim.Adam`'s (tests/test_optim.py). Training keeps `torch.optim` (fused optimizers, Opacus).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch.optim.adam import adam


class Adam:
    """`torch.optim.Adam(params, lr, betas, eps, weight_decay)` for CPU tensors: `zero_grad` and `step` only."""

    def __init__(self, params: Iterable[torch.Tensor], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0) -> None:
        self.params = list(params)
        self.lr, self.betas, self.eps, self.weight_decay = lr, betas, eps, weight_decay
        self.exp_avgs = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in self.params]
        self.exp_avg_sqs = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in self.params]
        self.steps = [torch.tensor(0.0) for _ in self.params]

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params:
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad.zero_()

    @torch.no_grad()
    def step(self) -> None:
        """One Adam step on every parameter that has a gradient (as `torch.optim.Adam.step`)."""
        live = [i for i, p in enumerate(self.params) if p.grad is not None]
        if not live:
            return
        adam([self.params[i] for i in live], [self.params[i].grad for i in live],  # type: ignore[misc]
             [self.exp_avgs[i] for i in live], [self.exp_avg_sqs[i] for i in live], [],
             [self.steps[i] for i in live], foreach=False, has_complex=False, amsgrad=False, beta1=self.betas[0],
             beta2=self.betas[1], lr=self.lr, weight_decay=self.weight_decay, eps=self.eps, maximize=False)
