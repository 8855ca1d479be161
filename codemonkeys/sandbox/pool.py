"""SandboxPool: a few warm sandboxes per problem, leased one run at a time.

The original implementation started a fresh container for each of the ~110 script runs
of a problem's test matrix. Here a run leases a warm sandbox and ``reset()`` (git reset +
clean, tens of milliseconds) returns it; containers are created lazily, at most ``size``
per pool, and at most ``container_slots`` across the whole run.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from codemonkeys.errors import Interrupted
from codemonkeys.sandbox.base import Sandbox, SandboxError
from codemonkeys.sandbox.kinds import engine_client, sandbox_kind
from codemonkeys.sandbox.spec import SandboxSpec

if TYPE_CHECKING:
    from codemonkeys.sandbox.secret_copy import RepoCopy

log = logging.getLogger(__name__)


def open_sandbox(
    spec: SandboxSpec, *, client: Any = None, repo_tar: bytes | None = None
) -> Sandbox:
    """A ready sandbox for ``spec`` (at its base tree). Raises SandboxError with a clear
    message when it cannot be had (no engine, image missing, repo_path not a git repo)."""
    if not sandbox_kind(spec.kind).needs_engine:
        from codemonkeys.sandbox.local import LocalSandbox

        return LocalSandbox(spec, repo_tar=repo_tar)
    from codemonkeys.sandbox.docker_sandbox import DockerSandbox

    return DockerSandbox(spec, client, repo_tar=repo_tar)


class SandboxPool:
    def __init__(
        self,
        spec: SandboxSpec,
        size: int = 4,
        container_slots: threading.BoundedSemaphore | None = None,
        *,
        client: Any = None,
        stop: threading.Event | None = None,
    ):
        if size < 1:
            raise ValueError("pool size must be >= 1")
        self.spec = spec
        self.size = size
        self.container_slots = container_slots
        self._client = client
        self.stop = stop
        """The run's stop flag: once set, no new lease is handed out (``Interrupted``)."""
        self._cond = threading.Condition()
        self._idle: list[Sandbox] = []
        self._count = 0  # live + being created
        self._all: list[Sandbox] = []
        self._closed = False
        self._copy: RepoCopy | None = None
        self._tar_lock = threading.Lock()
        self.stats: dict[str, float] = {
            "created": 0,
            "leases": 0,
            "resets": 0,
            "reset_seconds_total": 0.0,
            "discarded": 0,
            # machine time (summed over containers): opening, leases (runs), closing
            "open_seconds_total": 0.0,
            "lease_seconds_total": 0.0,
            "close_seconds_total": 0.0,
        }

    def _shared_tar(self) -> bytes | None:
        """The copy of a local repository (secrets out: ``secret_copy``), computed once for
        every container of the pool."""
        if self.spec.repo_path is None:
            return None
        with self._tar_lock:
            if self._copy is None:
                from codemonkeys.sandbox.secret_copy import repo_copy

                self._copy = repo_copy(self.spec)
            return self._copy.tar

    def _view(self, box: Sandbox) -> Sandbox:
        """What a lease hands out: the sandbox, behind the redaction of the copy's secret
        values when it has any."""
        if self._copy is None or not self._copy.redactor:
            return box
        from codemonkeys.sandbox.secret_copy import RedactingSandbox

        return RedactingSandbox(box, self._copy.redactor)

    def _client_once(self) -> Any:
        if self._client is None and sandbox_kind(self.spec.kind).needs_engine:
            self._client = engine_client(self.spec.kind)
        return self._client

    def _create(self) -> Sandbox:
        if self.container_slots is not None:
            self.container_slots.acquire()
        start = time.monotonic()
        try:
            box = open_sandbox(self.spec, client=self._client_once(), repo_tar=self._shared_tar())
        except BaseException:
            if self.container_slots is not None:
                self.container_slots.release()
            raise
        with self._cond:
            self._all.append(box)
            self.stats["created"] += 1
            self.stats["open_seconds_total"] += time.monotonic() - start
        return box

    def _discard(self, box: Sandbox) -> None:
        start = time.monotonic()
        try:
            box.close()
        finally:
            with self._cond:
                self.stats["close_seconds_total"] += time.monotonic() - start
                if box in self._all:
                    self._all.remove(box)
                self._count -= 1
                self.stats["discarded"] += 1
                self._cond.notify()
            if self.container_slots is not None:
                self.container_slots.release()

    def _acquire(self) -> Sandbox:
        if self.stop is not None and self.stop.is_set():
            raise Interrupted("run interrupted: no new sandbox lease")
        with self._cond:
            while True:
                if self._closed:
                    raise SandboxError("the sandbox pool is closed")
                if self._idle:
                    return self._idle.pop()
                if self._count < self.size:
                    self._count += 1
                    break
                self._cond.wait()
        try:
            return self._create()
        except BaseException:
            with self._cond:
                self._count -= 1
                self._cond.notify()
            raise

    def _release(self, box: Sandbox) -> None:
        if getattr(box, "broken", False):  # the sandbox itself failed: never reuse it
            log.warning("sandbox failed during a lease, replacing it")
            self._discard(box)
            return
        start = time.monotonic()
        try:
            box.reset()
        except Exception as e:
            log.warning("sandbox reset failed, replacing it: %s", e)
            self._discard(box)
            return
        with self._cond:
            self.stats["resets"] += 1
            self.stats["reset_seconds_total"] += time.monotonic() - start
            if self._closed:
                closing = True
            else:
                closing = False
                self._idle.append(box)
                self._cond.notify()
        if closing:
            self._discard(box)

    @contextmanager
    def lease(self) -> Iterator[Sandbox]:
        """A clean sandbox at the base tree; reset and returned to the pool on exit."""
        box = self._acquire()
        with self._cond:
            self.stats["leases"] += 1
        start = time.monotonic()
        try:
            yield self._view(box)
        finally:
            with self._cond:
                self.stats["lease_seconds_total"] += time.monotonic() - start
            self._release(box)

    def close(self) -> None:
        """Remove every sandbox of the pool (leased ones are removed when returned)."""
        with self._cond:
            self._closed = True
            idle, self._idle = self._idle, []
            self._cond.notify_all()
        for box in idle:
            self._discard(box)

    def __enter__(self) -> SandboxPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
