"""Where a grid's cells run: in this process (one worker) or as Ray tasks on a local or remote Ray cluster."""

from __future__ import annotations

import socket
import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from fedsim.errors import UserError, first_line
from fedsim.experiments.cells import failure_record, run_cell
from fedsim.experiments.expansion import Cell


@contextmanager
def cluster(workers: int, ray_address: str | None) -> Iterator[Any]:
    """Yield the started `ray` module (a local Ray with `workers` CPUs, or the cluster at `ray_address`),
    or None for one worker in this process; shuts Ray down afterwards."""
    if workers == 1 and ray_address is None:
        yield None
        return
    import ray  # slow to import: only when asked for

    warnings.filterwarnings("ignore", message=".*RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO.*", category=FutureWarning)
    try:
        if ray_address:
            _reachable(ray_address)
            ray.init(address=ray_address, logging_level="ERROR", log_to_driver=False)
        else:
            ray.init(num_cpus=workers, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        ray.shutdown()
        where = f"the Ray cluster at {ray_address!r}" if ray_address else "a local Ray"
        raise UserError(f"cannot start {where}: {first_line(exc)}") from None
    try:
        yield ray
    finally:
        ray.shutdown()


def _reachable(address: str) -> None:
    """Fail fast on a HOST:PORT nobody listens on (Ray itself retries for minutes)."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or "://" in address:
        return  # "auto", "ray://...": left to Ray
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as exc:
        raise ConnectionError(f"nothing answers at {address} ({exc.strerror or exc})") from None


def execute(cells: list[Cell], ray: Any) -> Iterable[dict[str, Any]]:
    """Yield each cell's record as it finishes: in this process without `ray`, else as Ray tasks."""
    if ray is None:
        for cell in cells:
            yield run_cell(cell.kind, cell.config, cell.labels)
        return
    task = ray.remote(num_cpus=1, max_retries=0)(run_cell)
    pending = {task.remote(c.kind, c.config, c.labels): c for c in cells}
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1)
        for ref in ready:
            cell = pending.pop(ref)
            try:
                yield ray.get(ref)
            except ray.exceptions.RayError as exc:  # the worker died (killed, out of memory): record it, go on
                yield failure_record(cell.kind, cell.config, cell.labels, exc, 0.0)
