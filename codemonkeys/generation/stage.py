"""The generation stage: N trajectories per problem in parallel, each resumable, merged
into a ``CandidateSet`` (distinct final patches, distinct final tests) for selection."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from codemonkeys.candidates import BaseFiles, CandidateSet
from codemonkeys.config import Config
from codemonkeys.errors import BudgetExceeded
from codemonkeys.execution import ExecutionCache
from codemonkeys.generation.adaptive import (
    ADAPTIVE_RECORD,
    stop_rule,
    temperature_for,
    wave_evidence,
)
from codemonkeys.generation.records import AdaptiveRecord, GenerationResult, TrajectoryRecord
from codemonkeys.generation.runtime import (
    EventCallback,
    GenerationRuntime,
    OriginalFiles,
    PrefixWarmer,
)
from codemonkeys.generation.stopping import decide
from codemonkeys.generation.trajectory import new_record, run_trajectory
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
    """Run (or resume) ``config.generation.samples`` trajectories for ``problem`` (with
    ``generation.adaptive``: in waves, until the stop rule stops them).

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
    try:
        if gen.adaptive:
            records = _run_adaptive(problem, rt, store, config, fp, files)
        else:
            records = [_load_or_new(store, rt, fp, i) for i in range(gen.samples)]
            _run_unfinished(rt, records)
    finally:
        rt.close()
    result = GenerationResult(
        trajectories=records, candidates=candidates_from(records, files.read_bytes)
    )
    store.save_record(problem.id, RESULT_RECORD, result, fingerprint=fp)
    return result


def _load_or_new(
    store: RunStore, rt: GenerationRuntime, fp: str, index: int, temperature: float | None = None
) -> TrajectoryRecord:
    """Trajectory ``index`` as saved by an earlier invocation, else a new one (at
    ``temperature`` when given); its recorded runs seed the execution cache."""
    rec = store.load_record(rt.problem.id, trajectory_record_name(index), TrajectoryRecord, fp)
    if rec is None:
        rec = new_record(rt, index)
        if temperature is not None:
            rec.temperature = temperature
    _seed_cache(rt.cache, rec)
    return rec


def _run_unfinished(rt: GenerationRuntime, records: list[TrajectoryRecord]) -> None:
    """Run (or resume) every unfinished or failed trajectory in parallel. Raises
    ``BudgetExceeded`` once all have stopped (each saved) when a cost cap stopped them."""
    todo = [r for r in records if r.state != "finished" or r.status == "error"]
    if not todo:
        return
    budget: BudgetExceeded | None = None
    with ThreadPoolExecutor(max_workers=len(todo), thread_name_prefix="traj") as ex:
        futures = [ex.submit(run_trajectory, rt, r) for r in todo]
        for f in futures:
            try:
                f.result()
            except BudgetExceeded as e:
                budget = budget or e
    if budget is not None:
        raise budget


def _run_adaptive(
    problem: Problem,
    rt: GenerationRuntime,
    store: RunStore,
    config: Config,
    fp: str,
    files: OriginalFiles,
) -> list[TrajectoryRecord]:
    """Waves of trajectories until the stop rule says stop (``generation/adaptive.py``).
    Decisions already in ``adaptive.json`` are replayed, not taken again; a wave with a
    failed trajectory is not decided on (the next invocation retries it first)."""
    gen = config.generation
    state = store.load_record(problem.id, ADAPTIVE_RECORD, AdaptiveRecord, fp) or AdaptiveRecord(
        wave_size=gen.adaptive_wave, limit=gen.samples, ladder=list(gen.temperatures)
    )
    records: list[TrajectoryRecord] = []
    for wave in range(gen.samples):
        temps = (state.ladder, state.in_use_at(wave))
        for i in range(len(records), state.started_at(wave)):
            records.append(_load_or_new(store, rt, fp, i, temperature_for(i, *temps)))
        _run_unfinished(rt, records)
        if any(r.status == "error" for r in records):
            break
        if wave == len(state.decisions):
            cands = candidates_from(records, files.read_bytes)
            ev = wave_evidence(
                cands, cache=rt.cache, state=state, wave=wave,
                voting=config.selection.voting, workers=gen.samples,
            )  # fmt: skip
            state.decisions.append(decide(wave, ev, stop_rule(gen)))
            store.save_record(problem.id, ADAPTIVE_RECORD, state, fingerprint=fp)
            d = state.decisions[-1]
            rt.event("adaptive_decision", wave=wave, action=d.action, reason=d.reason)
        if state.decisions[wave].action == "stop":
            break
    return records


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
