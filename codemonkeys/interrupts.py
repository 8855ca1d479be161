"""Ctrl-C and SIGTERM for a job, installed once from the main thread at the job's entry.

Python runs signal handlers in the main thread only, and a handler can only be installed
from there: the work itself (problems, trajectories, sandbox pools) lives in worker threads.
So each job (``solve``, ``swebench run``, ``ensemble``) wraps itself in ``JobSignals``:

- first SIGINT or SIGTERM: the job's ``stop`` event is set and acknowledged at once. No new
  problem or model call starts, retry backoff waits wake up, sandbox leases are refused;
  running stages end with status ``interrupted``, pools remove their containers and the run
  writes ``status.json``. The job then exits with ``128 + signal`` (130 for Ctrl-C, 143 for
  SIGTERM);
- a second signal aborts at once: the containers this process holds are removed,
  ``status.json`` says ``aborted`` (the run's abort hooks, ``StopFlag.at_abort``) and the
  process exits with ``128 + signal`` without waiting for its worker threads (whatever
  they were doing is redone by the next invocation; ``codemonkeys clean`` removes
  temporary directories left behind).

A signal counts as the second one only when it comes ``again_after_s`` (1 s) after the
first was acknowledged: one SIGTERM is often delivered twice within milliseconds (a
supervisor or ``timeout`` signals the whole process group, and ``uv run`` forwards the
same signal to its child), which must stop cleanly, not abort.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

log = logging.getLogger(__name__)

HANDLED = (signal.SIGINT, signal.SIGTERM)
AGAIN_AFTER_S = 1.0
"""A signal this soon after the first is the same signal delivered twice, not the user's
second one."""


class StopFlag(threading.Event):
    """A job's stop flag (set by the first signal) that also holds what an abort must
    still do (``at_abort``: e.g. the open run writes ``status.json`` ``aborted``)."""

    def __init__(self) -> None:
        super().__init__()
        self._abort_hooks: list[Callable[[int], None]] = []

    def at_abort(self, hook: Callable[[int], None]) -> Callable[[], None]:
        """Run ``hook(signum)`` if the job is aborted; returns the function that removes it
        (when the run it writes for is closed)."""
        self._abort_hooks.append(hook)
        return lambda: self._abort_hooks.remove(hook) if hook in self._abort_hooks else None

    def run_abort_hooks(self, signum: int) -> None:
        for hook in list(self._abort_hooks):
            try:
                hook(signum)
            except Exception:  # an abort goes on whatever a hook does
                log.exception("abort hook failed")


def abort(code: int, stop: StopFlag | None = None) -> None:
    """Run the abort hooks of ``stop``, remove this process's containers and exit at once
    (worker threads are not waited for: ``sys.exit`` would join them, which is what a
    second signal must not do)."""
    try:
        if stop is not None:
            stop.run_abort_hooks(code - 128)
        docker_sandbox = sys.modules.get("codemonkeys.sandbox.docker_sandbox")
        if docker_sandbox is not None:
            docker_sandbox.close_all_live()
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):  # the signal may interrupt a write to it
                stream.flush()
    finally:
        os._exit(code)


class JobSignals:
    """Context manager: SIGINT/SIGTERM set ``stop`` (first) or abort (second, at least
    ``again_after_s`` later)."""

    def __init__(
        self,
        console: Any = None,
        stop: StopFlag | None = None,
        *,
        again_after_s: float = AGAIN_AFTER_S,
    ):
        self.console = console
        self.stop = stop or StopFlag()
        self.again_after_s = again_after_s
        self.received: int | None = None
        """The first signal received, if any."""
        self._acknowledged_at = 0.0
        self._previous: dict[int, Any] = {}

    @property
    def exit_code(self) -> int:
        """128 + the signal (the shell's convention), 0 when none was received."""
        return 128 + self.received if self.received is not None else 0

    def _say(self, text: str) -> None:
        # the handler may interrupt the main thread in the middle of a write to the same
        # stream ("reentrant call"): a message lost is better than an exception there
        with contextlib.suppress(Exception):
            if self.console is not None:
                self.console.print(text, highlight=False)
            else:
                print(text, file=sys.stderr, flush=True)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self.received is not None:
            if time.monotonic() - self._acknowledged_at < self.again_after_s:
                return  # the first signal delivered twice (process group + a forwarder)
            self.restore()
            self._say(f"{name} again: aborting now")
            abort(128 + signum, self.stop)
        self._acknowledged_at = time.monotonic()  # before anything a repeat could interrupt
        self.received = signum
        self.stop.set()
        self._say(
            f"\n{name}: stopping (no new work starts, containers are removed, status is "
            f"recorded); send it again to abort at once"
        )
        self._acknowledged_at = time.monotonic()

    def __enter__(self) -> JobSignals:
        if threading.current_thread() is not threading.main_thread():
            raise RuntimeError("JobSignals must be entered from the main thread")
        for sig in HANDLED:
            self._previous[sig] = signal.getsignal(sig)
            signal.signal(sig, self._handle)
        return self

    def restore(self) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous if previous is not None else signal.SIG_DFL)
        self._previous = {}

    def __exit__(self, *exc: object) -> None:
        self.restore()
