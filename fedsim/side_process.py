"""One worker process forked at a command's start, so a heavy import and a fit run on the other core.

`fedsim attack` needs torch (the attack) and scikit-learn (the reference predictors); each import takes
1-1.5 s on a 2-core machine, as long as the attack itself on a small transcript. Forked before torch loads,
the worker imports scikit-learn and later fits the references while the main process imports torch and
attacks. Where fork is not available (Windows) or not safe (macOS), or the worker dies, the work runs in the
main process when its result is asked for: same inputs, same numbers, only later.
"""

from __future__ import annotations

import multiprocessing
import signal
import sys
from collections.abc import Callable
from importlib import import_module
from multiprocessing.connection import Connection
from types import TracebackType
from typing import Any, TypeVar

T = TypeVar("T")


def fork_available() -> bool:
    """True where a forked worker is safe: POSIX systems other than macOS (whose system libraries are not
    fork-safe once threads exist)."""
    return sys.platform != "darwin" and "fork" in multiprocessing.get_all_start_methods()


def _serve(connection: Connection, warm_modules: tuple[str, ...]) -> None:
    """The worker: import `warm_modules`, then answer each (fn, args) with ("ok", result) or ("error", exc).
    Ctrl-C is the main process's to handle (it ends the worker)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for name in warm_modules:
        import_module(name)
    while True:
        try:
            fn, args = connection.recv()
        except (EOFError, OSError):  # the main process closed its end: done
            return
        try:
            answer: tuple[str, Any] = ("ok", fn(*args))
        except Exception as exc:  # handed to the main process, which raises it there
            answer = ("error", exc)
        try:
            connection.send(answer)
        except Exception as exc:  # an unpicklable result or error: say what it was
            connection.send(("error", RuntimeError(f"side process: cannot return {answer[0]}: {exc}")))


class SideProcess:
    """A context manager over one forked worker that starts importing `warm_modules` at once; `submit` hands it
    a function and returns a getter of its result. One call at a time."""

    def __init__(self, warm_modules: tuple[str, ...] = (), enabled: bool = True) -> None:
        self._connection: Connection | None = None
        self._process: Any = None
        if enabled and fork_available():
            context = multiprocessing.get_context("fork")
            self._connection, child_end = context.Pipe()
            self._process = context.Process(target=_serve, args=(child_end, warm_modules), daemon=True)
            self._process.start()
            child_end.close()

    def submit(self, fn: Callable[..., T], *args: Any) -> Callable[[], T]:
        """Start `fn(*args)` in the worker (`fn` importable, arguments and result picklable); the getter returns
        its result, computing it here instead when there is no worker or it died. Errors raised by `fn`
        propagate from the getter."""
        sent = False
        if self._connection is not None:
            try:
                self._connection.send((fn, args))
                sent = True
            except OSError:  # the worker is gone
                pass

        def result() -> T:
            if sent and self._connection is not None:
                try:
                    status, value = self._connection.recv()
                except (EOFError, OSError):
                    return fn(*args)
                if status == "error":
                    raise value
                return value
            return fn(*args)

        return result

    def run(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(*args)` in the worker, waiting for it (here where there is no worker)."""
        return self.submit(fn, *args)()

    def __enter__(self) -> SideProcess:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        if self._connection is None:
            return
        self._connection.close()
        # every result asked for has arrived; an error or ctrl-C waits for nothing. SIGKILL, not SIGTERM: the
        # worker holds nothing to clean up, and a fork may still run a SIGTERM handler inherited from the caller
        self._process.kill()
        self._process.join(timeout=5)
