"""The run's coordinator: one Ray actor on the driver's node holding the run-wide limits.

Workers on every node ask it before each model call (``check``: the cost caps and the stop
flag; ``acquire``/``release``: a slot of the endpoint's concurrency limit) and book each
call's spend with it (``add``). Everything a worker writes to its run store is pushed here
(``push``) and pulled by the driver (``pull``), which applies it to the real run directory:
the driver stays the run store's single writer. Slots are held per attempt, so the slots of
a worker that died are given back with ``release_attempt``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from typing import Any

STOPPED = "stopped"


class Coordinator:
    """Run-wide limits and the event stream (instantiated as an async Ray actor)."""

    def __init__(
        self,
        endpoint_limits: dict[str, int],
        max_run_usd: float | None,
        max_problem_usd: float | None,
        spent_by_problem: dict[str, float],
    ):
        self.slots = {key: asyncio.Semaphore(n) for key, n in endpoint_limits.items()}
        self.peak: dict[str, int] = defaultdict(int)
        self.active: dict[str, int] = defaultdict(int)
        self.held: dict[str, list[str]] = defaultdict(list)
        self.max_run_usd = max_run_usd
        self.max_problem_usd = max_problem_usd
        self.by_problem: dict[str, float] = defaultdict(float, spent_by_problem)
        self.total = sum(spent_by_problem.values())
        self.stopped = asyncio.Event()
        self.events: list[Any] = []
        self.new_events = asyncio.Event()

    # -- model-call slots ----------------------------------------------------------------
    async def acquire(self, key: str, attempt: str) -> bool:
        """Wait for a slot of endpoint ``key``; False when the run stopped meanwhile."""
        if self.stopped.is_set():
            return False
        got = asyncio.ensure_future(self.slots[key].acquire())
        stop = asyncio.ensure_future(self.stopped.wait())
        await asyncio.wait({got, stop}, return_when=asyncio.FIRST_COMPLETED)
        stop.cancel()
        if not got.done():
            got.cancel()
            return False
        self.held[attempt].append(key)
        self.active[key] += 1
        self.peak[key] = max(self.peak[key], self.active[key])
        return True

    async def release(self, key: str, attempt: str) -> None:
        if key in self.held.get(attempt, []):
            self.held[attempt].remove(key)
            self.active[key] -= 1
            self.slots[key].release()

    async def release_attempt(self, attempt: str) -> int:
        """Give back every slot a (dead) attempt holds; how many."""
        keys = self.held.pop(attempt, [])
        for key in keys:
            self.active[key] -= 1
            self.slots[key].release()
        return len(keys)

    async def peaks(self) -> dict[str, int]:
        return dict(self.peak)

    # -- caps and stop -------------------------------------------------------------------
    async def check(self, problem_id: str) -> str | None:
        """Why no new call may start (``STOPPED`` or a cap message), None when it may."""
        if self.stopped.is_set():
            return STOPPED
        if self.max_run_usd is not None and self.total >= self.max_run_usd:
            return f"run cost cap reached: ${self.total:.2f} of ${self.max_run_usd:.2f}"
        spent = self.by_problem[problem_id]
        if self.max_problem_usd is not None and spent >= self.max_problem_usd:
            return (
                f"cost cap per problem reached for {problem_id}: "
                f"${spent:.2f} of ${self.max_problem_usd:.2f}"
            )
        return None

    async def add(self, problem_id: str, cost: float) -> None:
        self.total += cost
        self.by_problem[problem_id] += cost

    async def stop(self) -> None:
        self.stopped.set()

    async def is_stopped(self) -> bool:
        return self.stopped.is_set()

    # -- records and progress ------------------------------------------------------------
    async def push(self, events: list[Any]) -> None:
        self.events.extend(events)
        self.new_events.set()

    async def pull(self, wait_s: float) -> list[Any]:
        """The events pushed since the last pull, waiting up to ``wait_s`` for one."""
        if not self.events and wait_s > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.new_events.wait(), timeout=wait_s)
        events, self.events = self.events, []
        self.new_events.clear()
        return events
