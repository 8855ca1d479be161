"""The worker side: one problem solved on a Ray node, its records streamed to the driver.

A task gets the problem, the records the driver already has for it (its directory and its
calls from the call log) and the coordinator's handle. It rebuilds a ``Runtime`` around a
scratch copy of the run directory on the node (``StreamingRunStore``: every write, append
and prompt is also pushed to the coordinator, whence the driver writes it to the real run
directory), cost caps and endpoint slots that ask the coordinator (``RemoteCostTracker``,
``RemoteEndpointLimit``) and an observer that streams progress. Then it runs the same
``solve`` as a local run: resumed records and calls already paid are answered from the
seeded copies, so a problem retried on another node never pays a recorded call twice.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from codemonkeys.config import Config
from codemonkeys.distributed.coordinator import STOPPED
from codemonkeys.errors import BudgetExceeded, Interrupted
from codemonkeys.llm import ModelHub
from codemonkeys.llm.recording import CallLog, CostTracker, EndpointLimit
from codemonkeys.pipeline import Observer, Runtime
from codemonkeys.problem import Gold, Problem
from codemonkeys.run_records import ProblemResult
from codemonkeys.sandbox.images import remove_host_orphans
from codemonkeys.sandbox.kinds import sandbox_kind
from codemonkeys.store import RunStore, to_jsonable
from codemonkeys.tempdirs import temp_dir

Sink = Callable[[list[Any]], None]
Solve = Callable[[Runtime, Problem, Gold | None], ProblemResult]


class ProblemJob(BaseModel):
    """What a task needs besides the solve function and the coordinator."""

    run_name: str
    attempt: str
    problem: Problem
    gold: Gold | None = None
    config: Config
    files: dict[str, bytes]
    """The problem's records on the driver, by path relative to the run directory (the
    call log's lines of this problem under ``calls.jsonl``)."""
    container_slots: int
    endpoint_limits: dict[str, int]
    prompt_files: dict[str, bytes] = {}
    """The driver's ``prompts.dir`` templates by relative path: written on the node and
    used in that directory's place (a node has no copy of the driver's disk)."""


def prompt_files(config: Config) -> dict[str, bytes]:
    """The templates of ``config``'s ``prompts.dir`` (nothing without one), to ship."""
    root = config.prompts.dir
    if root is None:
        return {}
    return {f.relative_to(root).as_posix(): f.read_bytes() for f in root.rglob("*.j2")}


def node_config(config: Config, files: dict[str, bytes], scratch: Path) -> Config:
    """``config`` on this node: a shipped ``prompts.dir`` rewritten under ``scratch``."""
    if not files:
        return config
    seed(scratch / "prompts", files)
    prompts = config.prompts.model_copy(update={"dir": scratch / "prompts"})
    return config.model_copy(update={"prompts": prompts})


class StreamingRunStore(RunStore):
    """A run store on the node's scratch disk that pushes every change to ``sink``."""

    def __init__(self, root: Path, sink: Sink):
        super().__init__(root)
        self.sink = sink
        self._forward = threading.Lock()
        """One order for the local change and its push (the driver applies them in order)."""

    def _rel(self, path: Path) -> str:
        return self._abs(path).relative_to(self.root).as_posix()

    def write_json(self, path: Path, data: Any) -> None:
        with self._forward:
            super().write_json(path, data)
            self.sink([("write", self._rel(path), to_jsonable(data))])

    def append_jsonl(self, path: Path, obj: Any) -> tuple[int, int]:
        with self._forward:
            where = super().append_jsonl(path, obj)
            self.sink([("append", self._rel(path), to_jsonable(obj))])
        return where

    def append_prompt(self, problem_id: str, record: dict[str, Any]) -> None:
        with self._forward:
            super().append_prompt(problem_id, record)
            self.sink([("prompt", problem_id, record)])

    def archive_stale(self, path: Path) -> None:
        with self._forward:
            super().archive_stale(path)
            self.sink([("archive", self._rel(path), None)])

    def delete_record(self, problem_id: str, name: str) -> None:
        with self._forward:
            super().delete_record(problem_id, name)
            self.sink([("delete", self._rel(self.problem_dir(problem_id) / f"{name}.json"), None)])


class RemoteCostTracker(CostTracker):
    """Spend of this problem, with the run-wide caps and stop flag held by the coordinator."""

    def __init__(self, coordinator: Any, stop: threading.Event):
        super().__init__(None, None, stop=stop)
        self.coordinator = coordinator

    def check(self, problem_id: str) -> None:
        import ray  # deferred: ray loads only when used

        if self.stop.is_set():
            raise Interrupted("run interrupted: no new model calls are started")
        reason = ray.get(self.coordinator.check.remote(problem_id))
        if reason == STOPPED:
            self.stop.set()
            raise Interrupted("run interrupted: no new model calls are started")
        if reason:
            raise BudgetExceeded(reason)

    def add(self, problem_id: str, stage: str, cost: float) -> None:
        import ray  # deferred: ray loads only when used

        super().add(problem_id, stage, cost)
        ray.get(self.coordinator.add.remote(problem_id, cost))


class RemoteEndpointLimit(EndpointLimit):
    """An endpoint's concurrency limit shared by every node (slots granted by the
    coordinator, per attempt so a dead worker's slots can be given back)."""

    def __init__(self, coordinator: Any, key: str, attempt: str, max_concurrency: int, stop: Any):
        super().__init__(max_concurrency)
        self.coordinator, self.key, self.attempt, self.stop = coordinator, key, attempt, stop

    @contextmanager
    def slot(self) -> Iterator[None]:
        import ray  # deferred: ray loads only when used

        if not ray.get(self.coordinator.acquire.remote(self.key, self.attempt)):
            self.stop.set()
            raise Interrupted("run interrupted: no new model calls are started")
        try:
            with super().slot():
                yield
        finally:
            ray.get(self.coordinator.release.remote(self.key, self.attempt))


@dataclass
class StreamingObserver(Observer):
    """Progress events of the problem, pushed to the driver with the node's name."""

    sink: Sink
    node: str

    def problem_stage(self, problem_id: str, stage: str) -> None:
        self.sink([("stage", problem_id, {"stage": stage, "node": self.node})])

    def problem_done(self, result: ProblemResult) -> None:
        self.sink([("done", result.id, result.model_dump())])

    def problem_resumed(self, result: ProblemResult) -> None:
        self.sink([("resumed", result.id, result.model_dump())])

    def event(self, problem_id: str, kind: str, **info: Any) -> None:
        self.sink([("event", problem_id, {"kind": kind, **to_jsonable(info)})])


def node_name() -> str:
    """This node as the progress display names it: address and the start of its id."""
    import ray  # deferred: ray loads only when used

    ip = ray.util.get_node_ip_address()
    return f"{ip}/{ray.get_runtime_context().get_node_id()[:6]}"


def seed(root: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def worker_runtime(job: ProblemJob, root: Path, coordinator: Any, sink: Sink) -> Runtime:
    """A Runtime over the seeded scratch directory whose limits live in the coordinator."""
    store = StreamingRunStore(root, sink)
    stop = threading.Event()
    costs = RemoteCostTracker(coordinator, stop)
    calls = CallLog(store)
    for problem, stage, cost in calls.spend():  # this problem's spend so far, not re-booked
        CostTracker.add(costs, problem, stage, cost)
    hub = ModelHub(job.config.models, calls, costs, record_prompts=job.config.run.record_prompts)
    for key, n in job.endpoint_limits.items():
        hub.limits[key] = RemoteEndpointLimit(coordinator, key, job.attempt, n, stop)
    return Runtime(
        config=job.config,
        store=store,
        hub=hub,
        costs=costs,
        container_slots=threading.BoundedSemaphore(job.container_slots),
        stop=stop,
        observer=StreamingObserver(sink, node_name()),
    )


def remove_orphan_containers(config: Config, run_id: str) -> int:
    """Remove this run's containers that a worker of this host created and that outlived
    it (a node lost mid-problem); those of live workers, and of other hosts sharing the
    engine (pods on one Docker socket), are kept. How many were removed."""
    kind = sandbox_kind(config.sandbox.kind)
    if not kind.needs_engine:
        return 0
    return remove_host_orphans(run_id, kind.engine_host)


def solve_on_node(job: ProblemJob, solve: Solve, coordinator: Any) -> ProblemResult:
    """The body of the Ray task: the problem through ``solve`` on this node."""
    import ray  # deferred: ray loads only when used

    if ray.get(coordinator.is_stopped.remote()):
        return ProblemResult(id=job.problem.id, status="interrupted", error="run interrupted")

    def sink(events: list[Any]) -> None:
        ray.get(coordinator.push.remote([(job.attempt, *e) for e in events]))

    sink([("node", job.problem.id, {"node": node_name()})])
    remove_orphan_containers(job.config, job.run_name)
    with temp_dir("ray") as scratch:
        root = scratch / job.run_name
        seed(root, job.files)
        job = job.model_copy(update={"config": node_config(job.config, job.prompt_files, scratch)})
        rt = worker_runtime(job, root, coordinator, sink)
        try:
            return solve(rt, job.problem, job.gold)
        finally:
            rt.hub.calls.index.close()
