"""How an invocation ended: ``RunSummary`` (what ``status.json`` records and the console
says) and the job's exit status."""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Literal, Protocol

from pydantic import BaseModel, Field

from codemonkeys.llm.recording import CostTracker
from codemonkeys.run_records import ProblemResult
from codemonkeys.store import DiskFull, RunStore

log = logging.getLogger(__name__)

RunStatus = Literal["finished", "interrupted", "budget_exhausted", "disk_full"]
EXIT_CODES = {
    "finished": 0,
    "failed": 1,
    "budget_exhausted": 3,
    "disk_full": 4,
    "interrupted": 130,
}
"""Exit status of a job: 0 every problem finished without an error, 1 some problem failed
(its error is in its result.json; a rerun retries it), 3 the cost cap stopped the run,
4 the disk filled up, 130 interrupted (Ctrl-C; 143 for SIGTERM: the CLI exits 128 + the
signal). A rerun of the same command resumes in every case."""


class RunState(Protocol):
    """What the summary reads of a run (``pipeline.Runtime`` has it): the store, the stop
    flag and the spend against the caps."""

    @property
    def store(self) -> RunStore: ...

    @property
    def stop(self) -> threading.Event: ...

    @property
    def costs(self) -> CostTracker: ...


class RunSummary(BaseModel):
    """How an invocation ended, as status.json records it and the console says it."""

    status: RunStatus
    problems: int
    by_status: dict[str, int] = Field(default_factory=dict)
    cost_usd: float = 0.0
    updated_at: float = Field(default_factory=time.time)

    @property
    def errors(self) -> int:
        """Problems left unfinished by a failure (``failed``, or ``error``: an outage)."""
        return self.by_status.get("failed", 0) + self.by_status.get("error", 0)

    @property
    def exit_code(self) -> int:
        if self.status != "finished":
            return EXIT_CODES[self.status]
        return EXIT_CODES["failed"] if self.errors else 0

    def describe(self) -> str:
        done = sum(self.by_status.get(s, 0) for s in ("done", "no_candidates"))
        counts = ", ".join(f"{k} {v}" for k, v in sorted(self.by_status.items())) or "none"
        head = {
            "finished": "finished",
            "interrupted": "interrupted",
            "budget_exhausted": "stopped at the cost cap",
            "disk_full": "stopped: no space left on the run directory's disk (records so far "
            "are intact; free some space)",
        }[self.status]
        line = f"{head}: {done} of {self.problems} problem(s) done ({counts}), errors {self.errors}"
        if self.status != "finished" or self.errors:
            line += "; rerun the same command to resume" + (
                " (failed problems are retried)" if self.errors else ""
            )
        return line


def write_aborted(store: RunStore, signum: int) -> None:
    """status.json of an invocation aborted by a second signal (its worker threads are not
    waited for, so there are no per-problem counts: the records so far are intact and a
    rerun of the same command resumes)."""
    name = signal.Signals(signum).name if signum in signal.valid_signals() else str(signum)
    store.write_json(
        Path("status.json"),
        {
            "status": "aborted",
            "signal": name,
            "reason": f"a second {name} aborted the run at once; rerun the same command to resume",
            "updated_at": time.time(),
        },
    )


def run_status(rt: RunState) -> RunStatus:
    if rt.store.disk_full.is_set():
        return "disk_full"
    if rt.stop.is_set():
        return "interrupted"
    if rt.costs.run_exhausted():
        return "budget_exhausted"
    return "finished"


def write_status(
    rt: RunState, results: list[ProblemResult], total: int | None = None
) -> RunSummary:
    """status.json for this invocation's ``results`` (``total``: how many problems the
    invocation meant to run; those it never started are counted ``not_started``)."""
    by_status: dict[str, int] = dict(Counter[str](r.status for r in results))
    if total is not None and total > len(results):
        by_status["not_started"] = total - len(results)
    summary = RunSummary(
        status=run_status(rt),
        problems=max(total or 0, len(results)),
        by_status=by_status,
        cost_usd=round(rt.costs.total, 6),
    )
    try:
        rt.store.write_json(Path("status.json"), summary)
    except DiskFull as e:  # even the freed reserve is used up: the console still says it
        log.error("status.json could not be written: %s", e)
    return summary
