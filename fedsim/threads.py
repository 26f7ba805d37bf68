"""How many threads torch uses for a piece of work."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def torch_threads(n: int = 1) -> Iterator[None]:
    """Run the block with `n` torch intra-op threads, then restore the previous setting.

    Split-learning models are small, so intra-op threads buy little, while on a busy 2-core machine two
    threads per process made training and LBA up to ~100x slower than one (measured side by side:
    20k-row synthetic training, 0.16 s on one thread vs 2.8 s on two, with other jobs running).
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
