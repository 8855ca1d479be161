"""Ctrl-C and SIGTERM for a job, installed once from the main thread at the job's entry.

Python runs signal handlers in the main thread only, and a handler can only be installed
from there: the work itself (problems, trajectories, sandbox pools) lives in worker threads.
So each job (``solve``, ``swebench run``, ``ensemble``) wraps itself in ``JobSignals``:

- first SIGINT or SIGTERM: the job's ``stop`` event is set and acknowledged at once. No new
  problem or model call starts, retry backoff waits wake up, sandbox leases are refused;
  running stages end with status ``interrupted``, pools remove their containers and the run
  writes ``status.json``. The job then exits with ``128 + signal`` (130 for Ctrl-C, 143 for
  SIGTERM);
- a second signal aborts at once: the containers this process holds are removed and the
  process exits with ``128 + signal`` without waiting for its worker threads (whatever
  they were doing is redone by the next invocation; ``codemonkeys clean`` removes
  temporary directories left behind).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from types import FrameType
from typing import Any

HANDLED = (signal.SIGINT, signal.SIGTERM)


def abort(code: int) -> None:
    """Remove this process's containers and exit at once (worker threads are not waited
    for: ``sys.exit`` would join them, which is what a second signal must not do)."""
    try:
        docker_sandbox = sys.modules.get("codemonkeys.sandbox.docker_sandbox")
        if docker_sandbox is not None:
            docker_sandbox.close_all_live()
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):  # the signal may interrupt a write to it
                stream.flush()
    finally:
        os._exit(code)


class JobSignals:
    """Context manager: SIGINT/SIGTERM set ``stop`` (first) or abort (second)."""

    def __init__(self, console: Any = None, stop: threading.Event | None = None):
        self.console = console
        self.stop = stop or threading.Event()
        self.received: int | None = None
        """The first signal received, if any."""
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
        if self.stop.is_set() and self.received is not None:
            self.restore()
            self._say(f"{signal.Signals(signum).name} again: aborting now")
            abort(128 + signum)
        self.received = signum
        self.stop.set()
        name = signal.Signals(signum).name
        self._say(
            f"\n{name}: stopping (no new work starts, containers are removed, status is "
            f"recorded); send it again to abort at once"
        )

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
