"""Resource guards: a count a user gives is checked against this machine's free memory before anything is
allocated, so an oversized request is one line (exit 2) in well under a second, never a swap storm or a kill
by the kernel."""

from __future__ import annotations

import os

from fedsim.errors import check

MEMORY_SHARE = 0.5  # of the memory free now: what one request may plan to hold (the rest: Python, torch, copies)


def free_memory() -> int:
    """Bytes of physical memory free now (`os.sysconf`); a generous 64 GiB where the platform does not say."""
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 64 << 30


def check_memory(flag: str, count: int, bytes_each: int, what: str, subject: str | None = None) -> None:
    """Refuse `count` items of about `bytes_each` bytes each when they would not fit in a share of free memory;
    the message names the flag (or `subject`, for a count no flag gives), the estimate and the largest count
    that fits."""
    budget = int(free_memory() * MEMORY_SHARE)
    need = count * bytes_each
    check(need <= budget, f"{subject or f'{flag} {count}'} needs about {need / 2**30:.1f} GiB for {what}, more than "
                          f"this machine can spare ({budget / 2**30:.1f} GiB free for it): at most "
                          f"{budget // bytes_each} fit")
