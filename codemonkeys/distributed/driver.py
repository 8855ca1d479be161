"""The driver side: problems dispatched as Ray tasks, their records written here.

``run_problems_on_ray`` is ``pipeline.run_problems`` over a Ray cluster. Each problem is a
task that needs ``slots`` units of the node resource (default ``docker_slots``: the
containers a node may run), so it lands on a node with a Docker engine and room. The
driver keeps the run store: it applies every change the workers stream through the
coordinator, in order, so the run directory looks exactly as after a local run and
rerunning resumes. A task lost with its node is submitted again, with the records and
calls streamed so far (found through the call index), up to ``max_attempts`` times.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from codemonkeys.distributed.cluster import RayUnavailable, clean_nodes, connect, start_coordinator
from codemonkeys.distributed.worker import ProblemJob, prompt_files, solve_on_node
from codemonkeys.llm import ModelHub
from codemonkeys.llm.recording import CALLS_FILE
from codemonkeys.pipeline import Runtime, load_result, result_fingerprint
from codemonkeys.problem import Gold, Problem
from codemonkeys.records import Record
from codemonkeys.run_records import ProblemResult, Status
from codemonkeys.run_summary import write_status
from codemonkeys.store import PROMPTS_FILE, DiskFull

log = logging.getLogger(__name__)

EVENT_WAIT_S = 1.0
"""How long the driver's long poll for worker events waits; also how soon it sees Ctrl-C."""


class RayOptions(BaseModel):
    address: str = "auto"
    """``auto`` (the cluster this machine belongs to, e.g. after ``ray start``), an address
    (``ray://head:10001``, ``head:6379``) or ``local`` (start a one-machine cluster)."""
    resource: str = "docker_slots"
    """The custom node resource counting the containers a node may run."""
    slots: int | None = None
    """Units of ``resource`` a problem takes (default ``sandbox.pool_size``)."""
    max_attempts: int = 3
    """Attempts per problem when nodes die under it."""


def problem_files(rt: Runtime, problem_id: str) -> dict[str, bytes]:
    """The records a worker starts from: the problem's directory (not its prompt log, which
    is only appended to, nor stale records) and its calls (found through the call index,
    not by scanning the log)."""
    d = rt.store.problem_dir(problem_id)
    files = {
        p.relative_to(rt.store.root).as_posix(): p.read_bytes()
        for p in d.rglob("*")
        if p.is_file() and p.name != PROMPTS_FILE and "stale" not in p.relative_to(d).parts
    }
    calls = rt.hub.calls.index.problem_lines(problem_id)
    if calls:
        files[CALLS_FILE] = calls
    return files


def endpoint_limits(rt: Runtime) -> dict[str, int]:
    models = rt.config.models
    limits: dict[str, int] = {}
    for ep in (models.primary, models.relevance_endpoint()):
        limits.setdefault(ModelHub._endpoint_key(ep), ep.max_concurrency)
    return limits


@dataclass
class Attempt:
    problem: Problem
    gold: Gold | None
    number: int
    id: str


class Dispatcher:
    """Submits problems as tasks, applies the workers' events, retries lost tasks."""

    def __init__(self, rt: Runtime, coordinator: Any, solve: Any, options: RayOptions):
        import ray  # deferred: ray loads only when used

        self.rt, self.coordinator, self.solve, self.options = rt, coordinator, solve, options
        self.slots = options.slots or rt.config.sandbox.pool_size
        self.task = ray.remote(solve_on_node).options(
            resources={options.resource: self.slots},
            num_cpus=0,
            max_retries=0,
            scheduling_strategy="SPREAD",
        )
        self.running: dict[Any, Attempt] = {}
        self.prompt_files = prompt_files(rt.config)
        self.results: list[ProblemResult] = []
        self.stop_sent = False
        self.events_ref = coordinator.pull.remote(EVENT_WAIT_S)

    def capacity(self) -> int:
        import ray  # deferred: ray loads only when used

        total = ray.cluster_resources().get(self.options.resource, 0)
        if total < self.slots:
            raise RayUnavailable(
                f"no node of the Ray cluster offers {self.slots} {self.options.resource!r}: "
                f"start nodes with `ray start --resources '{{\"{self.options.resource}\": 8}}'` "
                "on machines with a Docker engine (see docs/distributed.md)"
            )
        return int(total // self.slots)

    def submit(self, problem: Problem, gold: Gold | None, number: int = 1) -> None:
        job = ProblemJob(
            run_name=self.rt.run_id,
            attempt=f"{problem.id}#{number}-{uuid.uuid4().hex[:8]}",
            problem=problem,
            gold=gold,
            config=self.rt.config,
            files=problem_files(self.rt, problem.id),
            container_slots=self.slots,
            endpoint_limits=endpoint_limits(self.rt),
            prompt_files=self.prompt_files,
        )
        ref = self.task.remote(job, self.solve, self.coordinator)
        self.running[ref] = Attempt(problem, gold, number, job.attempt)

    def run(self, problems: Iterable[tuple[Problem, Gold | None]]) -> list[ProblemResult]:
        import ray  # deferred: ray loads only when used

        limit = self.capacity()
        pending = self._unfinished(problems)
        while True:
            self._watch_stop()
            while len(self.running) < limit and not self._stopping():
                nxt = next(pending, None)
                if nxt is None:
                    break
                self.submit(*nxt)
            if not self.running:
                break
            ready, _ = ray.wait([*self.running, self.events_ref], num_returns=1)
            if self.events_ref in ready:
                self._take_events()
            done = [ref for ref in ready if ref in self.running]
            if done:
                self.flush()
            for ref in done:
                self._finished(ref)
        self.flush()
        return self.results

    def _unfinished(
        self, problems: Iterable[tuple[Problem, Gold | None]]
    ) -> Iterator[tuple[Problem, Gold | None]]:
        """Problems a rerun still has to do (finished ones are reported, not shipped)."""
        for problem, gold in problems:
            done = load_result(self.rt, problem.id)
            if done is not None and done.finished:
                self.rt.observer.problem_resumed(done)
                self.results.append(done)
                continue
            yield problem, gold

    def _stopping(self) -> bool:
        return self.rt.stop.is_set() or self.rt.costs.run_exhausted()

    def _watch_stop(self) -> None:
        if self.rt.stop.is_set() and not self.stop_sent:
            self.coordinator.stop.remote()
            self.stop_sent = True

    def flush(self) -> None:
        """Apply every event pushed so far (before a finished task's result is taken, and
        before a lost problem is submitted again with its records)."""
        import ray  # deferred: ray loads only when used

        ray.get(self.coordinator.push.remote([]))  # wakes the long poll at once
        self._take_events()

    def _take_events(self) -> None:
        import ray  # deferred: ray loads only when used

        events = ray.get(self.events_ref)
        self.events_ref = self.coordinator.pull.remote(EVENT_WAIT_S)
        for event in events:
            try:
                apply_event(self.rt, event)
            except DiskFull as e:
                self.rt.stop.set()
                log.error("%s", e)

    def _finished(self, ref: Any) -> None:
        import ray  # deferred: ray loads only when used

        attempt = self.running.pop(ref)
        try:
            self.results.append(ray.get(ref))
        except ray.exceptions.RayTaskError as e:  # the solve function itself raised
            self._record_lost(attempt, "failed", f"{type(e.cause).__name__}: {e.cause}")
        except ray.exceptions.RayError as e:  # the worker or its node died
            ray.get(self.coordinator.release_attempt.remote(attempt.id))
            if attempt.number < self.options.max_attempts and not self._stopping():
                log.warning("%s lost (%s); retrying it on another node", attempt.problem.id, e)
                self.submit(attempt.problem, attempt.gold, attempt.number + 1)
            else:
                why = f"lost {attempt.number} time(s) with its node: {type(e).__name__}"
                self._record_lost(attempt, "error", why)

    def _record_lost(self, attempt: Attempt, status: Status, error: str) -> None:
        result = ProblemResult(id=attempt.problem.id, status=status, error=error)
        try:
            self.rt.store.save_record(
                result.id, Record.RESULT, result, result_fingerprint(self.rt.config)
            )
        except DiskFull as e:
            self.rt.stop.set()
            log.error("%s", e)
        self.rt.observer.problem_done(result)
        self.results.append(result)


def apply_event(rt: Runtime, event: tuple[Any, ...]) -> None:
    """One change or progress event from a worker, applied to the driver's run."""
    _attempt, kind, key, payload = event
    if kind == "write":
        rt.store.write_json(Path(key), payload)
    elif kind == "append" and key == CALLS_FILE:
        rt.hub.calls.append(payload)
        rt.costs.add(payload["problem"], payload["stage"], float(payload.get("cost_usd", 0.0)))
    elif kind == "append":
        rt.store.append_jsonl(Path(key), payload)
    elif kind == "prompt":
        rt.store.append_prompt(key, payload)
    elif kind == "archive":
        rt.store.archive_stale(Path(key))
    elif kind == "delete":
        (rt.store.root / key).unlink(missing_ok=True)
    else:
        _progress_event(rt, kind, key, payload)


def _progress_event(rt: Runtime, kind: str, problem_id: str, payload: dict[str, Any]) -> None:
    observer = rt.observer
    if kind == "node":
        observer.problem_node(problem_id, payload["node"])
    elif kind == "stage":
        observer.problem_stage(problem_id, payload["stage"])
    elif kind == "event":
        info = dict(payload)
        observer.event(problem_id, info.pop("kind"), **info)
    elif kind == "done":
        observer.problem_done(ProblemResult.model_validate(payload))
    elif kind == "resumed":
        observer.problem_resumed(ProblemResult.model_validate(payload))


def run_problems_on_ray(
    rt: Runtime,
    problems: Iterable[tuple[Problem, Gold | None]],
    *,
    solve: Any,
    options: RayOptions,
) -> list[ProblemResult]:
    """``pipeline.run_problems`` on a Ray cluster (``options.address``)."""
    import ray  # deferred: ray loads only when used

    connect(options.address, rt.config)
    coordinator = start_coordinator(rt, endpoint_limits(rt))
    try:
        results = Dispatcher(rt, coordinator, ray.put(solve), options).run(problems)
    finally:
        clean_nodes(rt.config, rt.run_id, options.resource)
        ray.kill(coordinator)
    write_status(rt, results)
    return results
