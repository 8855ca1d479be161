"""The generation stage: N trajectories per problem in parallel, each resumable, merged
into a ``CandidateSet`` (distinct final patches, distinct final tests) for selection."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from codemonkeys.candidates import BaseFiles, CandidateSet
from codemonkeys.config import Config
from codemonkeys.execution import ExecutionCache
from codemonkeys.generation.records import GenerationResult, TrajectoryRecord
from codemonkeys.generation.runtime import (
    EventCallback,
    GenerationRuntime,
    OriginalFiles,
    PrefixWarmer,
)
from codemonkeys.generation.trajectory import new_record, run_trajectory
from codemonkeys.llm.base import BudgetExceeded
from codemonkeys.problem import Problem
from codemonkeys.records import Record, trajectory_name
from codemonkeys.store import RunStore

log = logging.getLogger(__name__)

RESULT_RECORD = Record.GENERATION


def trajectory_record_name(index: int) -> str:
    return trajectory_name(index)


def _runtime(
    problem: Problem,
    hub: Any,
    config: Config,
    cache: ExecutionCache,
    *,
    context_text: str,
    files: OriginalFiles,
    store: RunStore | None,
    fingerprint: str,
    warmer: PrefixWarmer | None,
    on_event: EventCallback | None,
    record_name=trajectory_record_name,
) -> GenerationRuntime:
    def save(rec: TrajectoryRecord) -> None:
        if store is not None:
            store.save_record(problem.id, record_name(rec.index), rec, fingerprint=fingerprint)

    gen = config.generation
    return GenerationRuntime(
        problem=problem,
        config=config,
        test_model=hub.model("primary", problem_id=problem.id, stage="tests"),
        edit_model=hub.model("primary", problem_id=problem.id, stage="edits"),
        cache=cache,
        files=files,
        warmer=warmer or PrefixWarmer(gen.warm_cache, gen.warm_cache_min_chars),
        context_text=context_text,
        save=save,
        on_event=on_event,
        exec_workers=gen.samples,
    )


def candidates_from(
    trajectories: list[TrajectoryRecord], base: BaseFiles | None = None
) -> CandidateSet:
    """Distinct final patches (identified by the files they produce from ``base``) and
    distinct final tests."""
    cands = CandidateSet()
    for rec in sorted(trajectories, key=lambda r: r.index):
        if rec.final_patch:
            cands.add_patch(rec.final_patch, f"codemonkeys:traj-{rec.index}", base)
        if rec.final_test is not None:
            cands.add_test(rec.final_test)
    return cands


def run_generation(
    problem: Problem,
    context_text: str,
    hub: Any,
    pool: Any,
    store: RunStore,
    config: Config,
    *,
    repo_dir: Path | None = None,
    cache: ExecutionCache | None = None,
    on_event: EventCallback | None = None,
) -> GenerationResult:
    """Run (or resume) ``config.generation.samples`` trajectories for ``problem``.

    Finished trajectories saved by an earlier invocation with the same fingerprint are
    reused; unfinished or failed ones continue from their saved state. Raises
    ``BudgetExceeded`` (after saving every trajectory) when a cost cap stops the stage.
    """
    gen = config.generation
    fp = config.fingerprint("generation")
    if cache is None:
        cache = ExecutionCache(pool.lease, timeout=config.sandbox.script_timeout_s)
    files = OriginalFiles(repo_dir, pool.lease if pool is not None else None)
    rt = _runtime(
        problem,
        hub,
        config,
        cache,
        context_text=context_text,
        files=files,
        store=store,
        fingerprint=fp,
        warmer=None,
        on_event=on_event,
    )
    records: list[TrajectoryRecord] = []
    for i in range(gen.samples):
        rec = store.load_record(problem.id, trajectory_record_name(i), TrajectoryRecord, fp)
        records.append(rec if rec is not None else new_record(rt, i))
        _seed_cache(cache, records[-1])

    budget: BudgetExceeded | None = None
    try:
        todo = [r for r in records if r.state != "finished" or r.status == "error"]
        if todo:
            with ThreadPoolExecutor(max_workers=gen.samples, thread_name_prefix="traj") as ex:
                futures = [ex.submit(run_trajectory, rt, r) for r in todo]
                for f in futures:
                    try:
                        f.result()
                    except BudgetExceeded as e:
                        budget = budget or e
    finally:
        rt.close()
    result = GenerationResult(
        trajectories=records, candidates=candidates_from(records, files.read_bytes)
    )
    if budget is not None:
        raise budget
    store.save_record(problem.id, RESULT_RECORD, result, fingerprint=fp)
    return result


def _seed_cache(cache: ExecutionCache, rec: TrajectoryRecord) -> None:
    """Runs recorded earlier need not run again after a resume."""
    for t in rec.tests:
        cache.seed(None, t.script, t.original)
    for p in rec.pairs:
        script = rec.tests[p.test].script
        cache.seed(None, script, p.original)
        cache.seed(rec.edits[p.edit].patch, script, p.edited)


def run_testing_state_machine(
    problem: Problem,
    hub: Any,
    config: Config,
    *,
    pool: Any = None,
    cache: ExecutionCache | None = None,
    index: int = 0,
    store: RunStore | None = None,
    record_name: str = "tests",
    warmer: PrefixWarmer | None = None,
    on_event: EventCallback | None = None,
) -> TrajectoryRecord:
    """Run (or resume) only the testing state machine: a reproduction script for
    ``problem`` written from the issue alone. The returned record's ``final_test`` is the
    script (None when none was written), ``test_approved`` says whether the model approved
    it, ``tests[-1].original`` its run on the original code. Used by ensembling for
    problems without generated tests. Saved as ``<record_name>-<index>`` when a store is
    given. ``pool`` or ``cache`` must be given."""
    if cache is None:
        if pool is None:
            raise ValueError("run_testing_state_machine needs a pool or an execution cache")
        cache = ExecutionCache(pool.lease, timeout=config.sandbox.script_timeout_s)
    fp = config.fingerprint("generation")
    name = lambda i: f"{record_name}-{i}"  # noqa: E731
    rt = _runtime(
        problem,
        hub,
        config,
        cache,
        context_text="",
        files=OriginalFiles(None, None),
        store=store,
        fingerprint=fp,
        warmer=warmer,
        on_event=on_event,
        record_name=name,
    )
    try:
        rec = store.load_record(problem.id, name(index), TrajectoryRecord, fp) if store else None
        rec = rec or new_record(rt, index)
        _seed_cache(cache, rec)
        if rec.state == "testing" or rec.status == "error":
            run_trajectory(rt, rec, testing_only=True)
        return rec
    finally:
        rt.close()
