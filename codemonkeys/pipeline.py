"""The per-problem flow (context -> generation -> selection) and the scheduler across
problems.

Problems stream through the stages independently: there is no barrier between stages
across a dataset. Run-wide limits bound the work: concurrent model calls per endpoint
(``EndpointLimit`` inside every ``RecordingModel``), live containers (``container_slots``)
and problems in flight (the scheduler's worker count). A failing problem is recorded with
its reason and the others go on. Every stage saves fingerprinted records, so rerunning the
same command resumes; Ctrl-C sets ``Runtime.stop``: no new problem starts, running stages
stop at their next model call (``Interrupted``) and the store stays consistent.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from codemonkeys.candidates import CandidateSet
from codemonkeys.config import Config
from codemonkeys.ensemble import ensemble_problem
from codemonkeys.errors import BudgetExceeded, Interrupted
from codemonkeys.execution import ExecutionCache
from codemonkeys.generation.stage import run_generation
from codemonkeys.interrupts import StopFlag
from codemonkeys.llm import ModelHub
from codemonkeys.llm.base import ModelError
from codemonkeys.llm.recording import CallLog, CostTracker, replay_costs
from codemonkeys.machine_time import TEARDOWN, SandboxSeconds, add_phase
from codemonkeys.problem import Gold, Problem
from codemonkeys.records import Record
from codemonkeys.run_records import ProblemResult, StageTimes
from codemonkeys.run_summary import RunSummary as RunSummary  # re-exported for the jobs
from codemonkeys.run_summary import write_aborted, write_status
from codemonkeys.sandbox import SandboxPool, spec_from_config
from codemonkeys.sandbox.base import SandboxError
from codemonkeys.sandbox.kinds import engine_client, sandbox_kind
from codemonkeys.selection.stage import run_selection
from codemonkeys.store import DiskFull, RunLock, RunStore
from codemonkeys.tempdirs import temp_dir

if TYPE_CHECKING:
    from codemonkeys.selection.records import SelectionRecord

log = logging.getLogger(__name__)


class Unfinished(Exception):
    """An infrastructure failure left a stage incomplete; the problem is recorded with
    status ``error`` and this reason, and retried by the next invocation."""


class Observer:
    """What a job tells its user: progress callbacks and lines of text. No-ops here (a
    message is logged); the CLI implements them (``cli/display.py``: the live display, the
    console). Jobs never draw on a terminal themselves."""

    @contextmanager
    def running(self, problems: int, costs: CostTracker, cap: float | None) -> Iterator[None]:
        """Around a job's problems (the live display shows them, with the spend and cap)."""
        yield

    def run_status(self, status: str) -> None:
        """How the run ended (``RunSummary.status``), said before ``running`` exits."""

    def message(self, text: str, *, warning: bool = False) -> None:
        """A line of plain text for the user."""
        (log.warning if warning else log.info)("%s", text)

    def problem_stage(self, problem_id: str, stage: str) -> None: ...

    def problem_node(self, problem_id: str, node: str) -> None:
        """The problem runs on this cluster node (distributed runs)."""

    def problem_done(self, result: ProblemResult) -> None: ...

    def problem_resumed(self, result: ProblemResult) -> None:
        """A problem finished by an earlier invocation of the same run."""
        self.problem_done(result)

    def event(self, problem_id: str, kind: str, **info: object) -> None: ...


@dataclass
class Runtime:
    """Everything one run shares; passed explicitly, never global."""

    config: Config
    store: RunStore
    hub: ModelHub
    costs: CostTracker
    container_slots: threading.BoundedSemaphore
    stop: threading.Event = field(default_factory=threading.Event)
    observer: Observer = field(default_factory=Observer)
    lock: RunLock | None = None
    """The run directory's lock, held until ``close()`` or the process ends."""
    forget_abort: Callable[[], None] | None = None
    """Removes the hook that writes ``status.json`` ``aborted`` if the job is aborted."""

    def close(self) -> None:
        """Release the run directory for the next invocation (the lock also goes when the
        process ends, however it ends, or when the Runtime is dropped)."""
        if self.forget_abort is not None:
            self.forget_abort()
        if self.lock is not None:
            self.lock.release()

    @property
    def run_id(self) -> str:
        return self.store.root.name


def open_run(
    run_dir: Path,
    config: Config,
    *,
    observer: Observer | None = None,
    stop: threading.Event | None = None,
) -> Runtime:
    """Open (or resume) a run directory: write the effective config, load the call log and
    count its spend against the caps. ``stop`` is the job's stop flag (interrupts.JobSignals
    sets it on Ctrl-C/SIGTERM; a ``StopFlag`` also gets the hook that writes ``status.json``
    ``aborted`` should a second signal abort the job). Raises ``RunLocked`` (naming the holder) when another
    invocation has the run directory."""
    store = RunStore(run_dir)
    lock = RunLock(store.root).acquire()
    try:
        store.reserve_space()
        store.write_json(Path("config.json"), config)
    except BaseException:
        lock.release()
        raise
    stop = stop or threading.Event()
    costs = CostTracker(config.run.max_cost_usd, config.run.max_cost_per_problem_usd, stop=stop)
    calls = CallLog(store)
    replay_costs(calls, costs)
    hub = ModelHub(config.models, calls, costs, record_prompts=config.run.record_prompts)
    forget_abort = None
    if isinstance(stop, StopFlag):
        forget_abort = stop.at_abort(lambda signum: write_aborted(store, signum))
    return Runtime(
        config=config,
        store=store,
        hub=hub,
        costs=costs,
        container_slots=threading.BoundedSemaphore(config.sandbox.max_containers),
        stop=stop,
        observer=observer or Observer(),
        lock=lock,
        forget_abort=forget_abort,
    )


def require_docker(rt: Runtime) -> None:
    """With the Docker sandbox, make sure the engine answers before any problem starts. If
    it does not: ``status.json`` says so (status ``failed``, the reason) and ``SandboxError``
    carries one clear message for the CLI."""
    if not sandbox_kind(rt.config.sandbox.kind).needs_engine:
        return
    try:
        engine_client(rt.config.sandbox.kind)
    except SandboxError as e:
        rt.store.write_json(
            Path("status.json"),
            {"status": "failed", "error": str(e), "problems": 0, "updated_at": time.time()},
        )
        raise


def result_fingerprint(config: Config) -> str:
    return config.fingerprint("selection")


@contextmanager
def timed(
    rt: Runtime, problem_id: str, times: StageTimes, stage: str, pool: SandboxPool
) -> Iterator[None]:
    """Add the time spent in ``stage`` (wall, and the sandboxes' machine time) to ``times``
    and save it, also when the stage is interrupted or fails: a resumed problem's time is
    the sum of its invocations."""
    t0, before = time.monotonic(), SandboxSeconds.reading(pool)
    try:
        yield
    finally:
        times.seconds[stage] = times.seconds.get(stage, 0.0) + time.monotonic() - t0
        add_phase(times.sandbox, stage, SandboxSeconds.reading(pool).minus(before))
        rt.store.save_record(problem_id, Record.TIMING, times, result_fingerprint(rt.config))


def load_result(rt: Runtime, problem_id: str) -> ProblemResult | None:
    return rt.store.load_record(
        problem_id, Record.RESULT, ProblemResult, result_fingerprint(rt.config)
    )


def _export_repo(pool: SandboxPool, dest: Path) -> list[str]:
    """The repository files at the base commit, on the host, for the context stage. Taken
    from a sandbox, so local repositories and repository images go the same way."""
    with pool.lease() as sandbox:
        return sandbox.export_repo(dest)


def solve_problem(
    rt: Runtime,
    problem: Problem,
    gold: Gold | None = None,
    *,
    candidates: CandidateSet | None = None,
) -> ProblemResult:
    """Run one problem through the three stages; never raises for a problem's own failure.

    With ``candidates`` (ensembling other systems' patches) context and generation are
    skipped: tests are written where the candidates bring none, then the same selection."""
    done = load_result(rt, problem.id)
    if done is not None and done.finished:
        rt.observer.problem_resumed(done)
        return done

    cfg = rt.config
    rt.store.write_json(rt.store.problem_dir(problem.id) / Record.PROBLEM.file, problem)
    times = (
        rt.store.load_record(problem.id, Record.TIMING, StageTimes, result_fingerprint(cfg))
        or StageTimes()
    )
    result = ProblemResult(id=problem.id, status="failed")
    pool = None
    try:
        spec = spec_from_config(problem, cfg, run_id=rt.run_id)
        pool = SandboxPool(
            spec, size=cfg.sandbox.pool_size, container_slots=rt.container_slots, stop=rt.stop
        )
        _run_stages(rt, problem, gold, candidates, pool, times, result)
    except Exception as e:  # one problem's failure never stops the others
        _record_failure(rt, problem.id, result, e)
    finally:
        if pool is not None:
            _close_pool(rt, problem.id, pool, times)
    return _finish(rt, result, times)


def _close_pool(rt: Runtime, problem_id: str, pool: SandboxPool, times: StageTimes) -> None:
    """Remove the problem's containers; the machine time it takes is its ``teardown``."""
    before = SandboxSeconds.reading(pool)
    try:
        pool.close()
    except Exception as e:
        log.warning("closing the sandbox pool of %s: %s", problem_id, e)
    add_phase(times.sandbox, TEARDOWN, SandboxSeconds.reading(pool).minus(before))
    with contextlib.suppress(DiskFull):
        rt.store.save_record(problem_id, Record.TIMING, times, result_fingerprint(rt.config))


def _run_stages(
    rt: Runtime,
    problem: Problem,
    gold: Gold | None,
    candidates: CandidateSet | None,
    pool: SandboxPool,
    times: StageTimes,
    result: ProblemResult,
) -> None:
    """Context and generation (unless ``candidates`` are given), then selection; the
    outcome goes into ``result``."""
    cache = ExecutionCache(pool.lease, timeout=rt.config.sandbox.script_timeout_s)
    ensembled = candidates is not None
    if candidates is None:
        candidates = _generate_candidates(rt, problem, gold, pool, cache, times)
    if not candidates.candidates:
        result.status = "no_candidates"
        result.reason = "no trajectory produced a patch"
        return
    rt.observer.problem_stage(problem.id, "selection")
    with timed(rt, problem.id, times, "selection", pool):
        selection = _select(rt, problem, candidates, pool, cache, ensembled=ensembled)
    _take_selection(result, selection)


def _select(
    rt: Runtime,
    problem: Problem,
    candidates: CandidateSet,
    pool: SandboxPool,
    cache: ExecutionCache,
    *,
    ensembled: bool,
) -> SelectionRecord:
    """The selection stage; ensembled candidates first get tests where they bring none."""
    if ensembled:
        return ensemble_problem(problem, candidates, rt.hub, pool, rt.store, rt.config, cache=cache)

    return run_selection(problem, candidates, rt.hub, pool, rt.store, rt.config, cache=cache)


def _record_failure(rt: Runtime, problem_id: str, result: ProblemResult, e: Exception) -> None:
    """The status a stage's exception leaves the problem in (called while handling ``e``)."""
    result.error = str(e)
    if isinstance(e, DiskFull):  # the run stops; a rerun (with space) resumes this problem
        rt.stop.set()
        result.status = "interrupted"
    elif isinstance(e, Interrupted):
        result.status = "interrupted"
    elif isinstance(e, BudgetExceeded):
        result.status = "budget_exhausted"
    elif isinstance(e, Unfinished):
        result.status = "error"
        log.warning("problem %s left unfinished (retried on the next run): %s", problem_id, e)
    else:
        result.status = "error" if _infrastructure(e) else "failed"
        result.error = f"{type(e).__name__}: {e}"
        log.warning("problem %s failed: %s", problem_id, result.error)
        with contextlib.suppress(DiskFull):
            rt.store.write_json(
                rt.store.problem_dir(problem_id) / "error.json",
                {"error": result.error, "traceback": traceback.format_exc()},
            )


def _generate_candidates(
    rt: Runtime,
    problem: Problem,
    gold: Gold | None,
    pool: SandboxPool,
    cache: ExecutionCache,
    times: StageTimes,
) -> CandidateSet:
    """Context then generation: the distinct patches and tests of the trajectories."""
    from codemonkeys.context.stage import run_context  # deferred: loads bm25s only when used

    with temp_dir("repo") as repo_dir:
        rt.observer.problem_stage(problem.id, "context")
        with timed(rt, problem.id, times, "context", pool):
            paths = _export_repo(pool, repo_dir)
            context = run_context(problem, repo_dir, paths, rt.hub, rt.store, rt.config, gold=gold)
        if context.missing and not rt.config.context.allow_missing_decisions:
            raise Unfinished(
                f"context incomplete: {context.missing}; generation not started (the next "
                "run asks again; set context.allow_missing_decisions=true to go on without)"
            )

        rt.observer.problem_stage(problem.id, "generation")
        with timed(rt, problem.id, times, "generation", pool):
            generation = run_generation(
                problem,
                context.render(),
                rt.hub,
                pool,
                rt.store,
                rt.config,
                repo_dir=repo_dir,
                cache=cache,
                on_event=lambda kind, **info: rt.observer.event(
                    problem.id, kind, **{k: v for k, v in info.items() if k != "problem_id"}
                ),
            )
    if generation.errors:
        raise Unfinished(
            f"{len(generation.errors)} of {len(generation.trajectories)} trajectories failed "
            "(resumed by the next run): " + "; ".join(generation.errors)[:2000]
        )
    return generation.candidates


def _infrastructure(e: Exception) -> bool:
    """A provider, sandbox or Docker failure (not the problem's own fault)."""
    from docker.errors import DockerException  # deferred: docker loads only when used

    return isinstance(e, ModelError | SandboxError | DockerException)


def _take_selection(result: ProblemResult, selection: SelectionRecord) -> None:
    result.status = "done" if selection.chosen_patch else "no_candidates"
    result.selection_fallback = selection.fallback_kind
    result.chosen_id = selection.chosen_id
    result.chosen_patch = selection.chosen_patch
    result.reason = selection.reason
    result.candidates = candidate_summaries(selection)


def _finish(rt: Runtime, result: ProblemResult, times: StageTimes) -> ProblemResult:
    result.stage_seconds = times.seconds
    result.sandbox_seconds = times.sandbox
    result.cost_usd = round(rt.costs.by_problem.get(result.id, 0.0), 6)
    result.finished_at = time.time()
    try:
        rt.store.save_record(result.id, Record.RESULT, result, result_fingerprint(rt.config))
    except DiskFull as e:  # the problem stays unfinished on disk: a rerun redoes it
        rt.stop.set()
        log.error("%s: its result could not be saved: %s", result.id, e)
    rt.observer.problem_done(result)
    return result


def candidate_summaries(selection: SelectionRecord) -> list[dict[str, Any]]:
    """Per candidate: id, sources, votes and the verdict counts of the test matrix."""
    out: list[dict[str, Any]] = []
    for c in selection.candidates:
        row = selection.matrix.cells.get(c.id, {})
        verdicts = Counter(cell.verdict for cell in row.values())
        out.append(
            {
                "id": c.id,
                "sources": c.sources,
                "votes": selection.votes.get(c.id, 0),
                "outcomes": " ".join(f"{k}:{v}" for k, v in sorted(verdicts.items())),
            }
        )
    out.sort(key=lambda d: (-d["votes"], d["id"]))
    return out


def run_problems(
    rt: Runtime,
    problems: Iterable[tuple[Problem, Gold | None]],
    *,
    solve: Callable[[Runtime, Problem, Gold | None], ProblemResult] = solve_problem,
) -> list[ProblemResult]:
    """Stream problems through ``solve`` with at most ``run.max_problems_in_flight`` at once.
    Stops starting new problems on Ctrl-C (``rt.stop``) or when the run's cost cap is
    reached; problems not started are simply absent from the results (a rerun resumes)."""
    results: list[ProblemResult] = []
    pending = iter(problems)
    running: set[Future[ProblemResult]] = set()
    limit = rt.config.run.max_problems_in_flight
    with ThreadPoolExecutor(max_workers=limit, thread_name_prefix="problem") as pool:
        while True:
            while len(running) < limit and not rt.stop.is_set() and not rt.costs.run_exhausted():
                try:
                    problem, gold = next(pending)
                except StopIteration:
                    break
                running.add(pool.submit(solve, rt, problem, gold))
            if not running:
                break
            finished, running = wait(running, return_when=FIRST_COMPLETED)
            for fut in finished:
                try:
                    results.append(fut.result())
                except DiskFull as e:  # before the problem's own records: stop the run
                    rt.stop.set()
                    log.error("%s", e)
    write_status(rt, results)
    return results
