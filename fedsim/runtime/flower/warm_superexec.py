"""A Flower SuperExec that runs each ClientApp task in a fork of one warm process (opt-in, deployments only).

Flower 1.42's SuperExec starts a fresh `flwr-clientapp` process per message; on a 2-core machine that
process spends about 3 s importing Flower, torch and torch's compiler stack (which `torch.optim` loads on
first use) before fedsim's handler runs. This entry point is Flower's own `flower-superexec` (same
arguments, same task loop, same Runtime API protocol, same `run_clientapp` per task) with one change: a
ClientApp task runs in `os.fork()` of this process, which imported those libraries once at start. Each task
still runs in its own process, so nothing leaks between messages; fedsim itself is not pre-imported, so the
child loads the app from the run's FAB as Flower does. Other task types go to Flower's subprocess executor.

Start the SuperNode without its own SuperExec and this one next to it:

    flower-supernode --isolation process --insecure --superlink HOST:9092 --port 9094 --node-config ...
    python -m fedsim.runtime.flower.warm_superexec --insecure --runtime-api-address 127.0.0.1:9094

Fork safety: the parent only imports (no torch operation runs in it, so no OpenMP pool exists to be copied
half-initialised), and each child exits with `os._exit` so it never runs the parent's clean-up.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
import traceback
from contextlib import suppress
from typing import Any

from flwr.supercore.constant import TaskType
from flwr.supercore.superexec import run_superexec as superexec_module
from flwr.supercore.superexec.executor import LaunchResult
from flwr.supercore.superexec.executor.subprocess_executor import SubprocessExecutor
from flwr.supercore.superexec.executor.types import ExecutionSpec
from flwr.supercore.tls import validate_and_resolve_root_certificates
from flwr.supernode.runtime.run_clientapp import run_clientapp

FORKED = "fedsim warm SuperExec: ClientApp task"
# what a fedsim ClientApp process would otherwise import anew per message (seconds); torch._dynamo is what
# torch.optim's first optimizer loads
PRELOAD = ("numpy", "pydantic", "torch", "torch.optim", "torch._dynamo", "flwr.app", "flwr.clientapp")


class ForkExecutor:
    """Flower's `SubprocessExecutor`, except that ClientApp tasks run in a fork of this process."""

    def __init__(self) -> None:
        self.fallback = SubprocessExecutor()
        self.children: set[int] = set()

    def get_eligible_capacity(self, *args: Any, **kwargs: Any) -> Any:  # Flower's `Executor` protocol
        return self.fallback.get_eligible_capacity(*args, **kwargs)

    def wait_for_capacity(self, *args: Any, **kwargs: Any) -> None:
        self.fallback.wait_for_capacity(*args, **kwargs)

    def launch(self, spec: ExecutionSpec) -> LaunchResult:
        if spec.task_type != TaskType.CLIENT_APP:
            return self.fallback.launch(spec)
        pid = os.fork()
        if pid == 0:
            run_forked_clientapp(spec)
        self.children.add(pid)
        logging.getLogger("flwr").info("%s %d in forked process %d", FORKED, spec.task_id, pid)
        return LaunchResult.accepted()

    def reconcile(self) -> None:
        """Reap finished children (called by the SuperExec loop before each poll)."""
        for pid in list(self.children):
            with suppress(ChildProcessError):
                if os.waitpid(pid, os.WNOHANG)[0] == 0:
                    continue
            self.children.discard(pid)

    def close(self) -> None:
        self.fallback.close()


def run_forked_clientapp(spec: ExecutionSpec) -> None:
    """In the child: what `flwr-clientapp` does with the spec's arguments; never returns."""
    code = 1
    try:
        run_clientapp(
            runtime_api_address=spec.runtime_api_address,
            token=spec.token,
            insecure=spec.insecure,
            certificates=validate_and_resolve_root_certificates(spec.root_certificates_path, spec.insecure),
            parent_pid=spec.parent_pid,
            runtime_dependency_install=spec.runtime_dependency_install,
        )
        code = 0
    except SystemExit as exc:  # Flower ends every task with sys.exit(code)
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:  # report, then exit like a failed task process
        traceback.print_exc()
    finally:
        with suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def main() -> None:
    for module in PRELOAD:
        importlib.import_module(module)
    from flwr.supercore.cli.flower_superexec import flower_superexec

    executor = ForkExecutor()
    superexec_module.get_executor = lambda *args, **kwargs: executor  # the only change to flower-superexec
    flower_superexec()


if __name__ == "__main__":
    main()
