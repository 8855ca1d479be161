"""The selection stage for one problem: matrix + regression runs -> votes -> fusion ->
top-k -> selector -> record.

``run_selection`` is the public entry used by the pipeline and by ensembling. Its record is
saved with the selection fingerprint *and* a digest of its input (candidates + tests), so a
changed candidate set (e.g. other prediction files) is never answered from an old record.
A record that fell back because of a provider failure, a cost cap or a selector error (any
exception: the votes choose, the candidates are kept) is recomputed on the next run; one
that fell back because of the model's own replies is kept.
"""

from __future__ import annotations

import hashlib
import logging
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from functools import partial
from typing import TYPE_CHECKING, Protocol

from codemonkeys.candidates import BaseFiles, Candidate, CandidateSet
from codemonkeys.config import Config
from codemonkeys.diffs import touched_files
from codemonkeys.errors import Interrupted
from codemonkeys.execution import ExecutionCache, Script
from codemonkeys.llm.base import Model, ModelError
from codemonkeys.original_files import OriginalBytes
from codemonkeys.problem import Problem
from codemonkeys.records import Record
from codemonkeys.run_records import RETRYABLE_FALLBACKS
from codemonkeys.sandbox.base import Sandbox
from codemonkeys.selection.fusion import FusedRanking, FusionRule, VerifierEvidence, fuse
from codemonkeys.selection.matrix import ORIGINAL, Cell, TestMatrix, run_cell, run_matrix
from codemonkeys.selection.patches import strip_test_file_edits
from codemonkeys.selection.records import SelectionRecord, StrippedEdit
from codemonkeys.selection.regression import RegressionRecord, run_regression
from codemonkeys.selection.selector import (
    RunTest,
    SelectorOutcome,
    ShownFile,
    only_candidate,
    run_selector,
)
from codemonkeys.selection.voting import (
    VotingRule,
    behaviour_clusters,
    count_votes,
    distinct_tests,
    never_applied,
    rank_candidates,
    votes_for,
)
from codemonkeys.store import RunStore

if TYPE_CHECKING:
    from codemonkeys.llm import ModelHub

log = logging.getLogger(__name__)

RECORD_NAME = Record.SELECTION
VERDICT_RULES = "2"
"""Part of the input digest: bumped when the rules turning runs into votes and verdicts
change (2: a test must finish by itself to vote; a regression run must report the tests the
original passed), so a saved record made under the old rules is recomputed."""


def input_digest(candidates: CandidateSet, config: Config) -> str:
    h = hashlib.sha256()
    for c in sorted(candidates.candidates, key=lambda c: c.id):
        h.update(f"{c.id}\0{','.join(sorted(c.sources))}\n".encode())
    for t in sorted(candidates.tests, key=lambda t: t.digest):
        h.update(f"t{t.digest}\n".encode())
    h.update(str(config.selection.allow_test_file_edits).encode())
    h.update(f"rules{VERDICT_RULES}".encode())
    return h.hexdigest()[:16]


def prepare_candidates(
    candidates: CandidateSet, config: Config, base: BaseFiles | None = None
) -> tuple[CandidateSet, list[StrippedEdit]]:
    """Strip test-file hunks (unless allowed) and runner-file hunks (always), merge candidates that produce the same files
    from ``base`` (another system's formatting of the same change: one candidate, one
    top-k slot) and collapse identical tests."""
    out = CandidateSet()
    stripped: list[StrippedEdit] = []
    for c in candidates.candidates:
        patch, removed = strip_test_file_edits(
            c.patch, config.context.test_dirs, tests=not config.selection.allow_test_file_edits
        )
        added = out.add_sources(patch, c.sources or ["unknown"], base)
        if removed:
            stripped.append(
                StrippedEdit(
                    original_id=c.id, new_id=added.id if added else None, removed_files=removed
                )
            )
    out.tests = distinct_tests(candidates.tests)
    return out, stripped


class SandboxLeases(Protocol):
    """What selection needs of the problem's sandbox pool (``SandboxPool``): clean leases
    and how many sandboxes run at once."""

    size: int

    def lease(self) -> AbstractContextManager[Sandbox]: ...


def base_files(pool: SandboxLeases) -> BaseFiles:
    """The problem's base files, read from clean sandbox leases (once per path)."""
    return OriginalBytes(None, pool.lease).read_bytes


def pool_workers(pool: SandboxLeases, config: Config) -> int:
    return int(pool.size or config.sandbox.pool_size)


def read_original_files(
    problem: Problem, pool: SandboxLeases, paths: list[str], budget: int
) -> list[ShownFile]:
    """Original contents of ``paths``: from the local repository at the base commit when
    there is one (no sandbox needed), else from a clean sandbox lease."""
    contents: dict[str, str | None] = {}
    if problem.repo_path is not None:
        subdir = (getattr(problem, "subdir", None) or "").strip("/")
        for p in paths:
            rev = f"{problem.base_commit or 'HEAD'}:{subdir + '/' if subdir else ''}{p}"
            proc = subprocess.run(
                ["git", "show", rev],
                cwd=problem.repo_path,
                capture_output=True,
                text=True,
                errors="replace",
            )
            contents[p] = proc.stdout if proc.returncode == 0 else None
    elif paths:
        try:
            with pool.lease() as sandbox:
                for p in paths:
                    try:
                        data = sandbox.read_file(f"{sandbox.workdir.rstrip('/')}/{p}")
                        contents[p] = data.decode("utf-8", errors="replace")
                    except Exception:  # a file the candidate creates
                        contents[p] = None
        except Exception as e:
            log.warning(
                "%s: could not read the candidates' files (%s); the selector sees diffs only",
                problem.id,
                e,
            )
            return []
    shown: list[ShownFile] = []
    used = 0
    for p in paths:
        text = contents.get(p)
        if text is not None and used + len(text) > budget:
            shown.append(ShownFile(p, "", truncated=True))
            continue
        used += len(text or "")
        shown.append(ShownFile(p, text))
    return shown


def _example_test(
    tests: list[Script], matrix: TestMatrix, top: list[str], rule: VotingRule
) -> Script | None:
    """The test that votes for the most top-k candidates (first one on ties)."""
    if not tests:
        return None
    by_digest = {t.digest: t for t in tests}
    score = {t: 0 for t in matrix.tests}
    for c in top:
        for t in votes_for(matrix, c, rule):
            score[t] += 1
    best = max(matrix.tests, key=lambda t: score[t]) if matrix.tests else None
    return by_digest.get(best) if best else tests[0]


def fuse_evidence(record: SelectionRecord, rule: FusionRule) -> FusedRanking:
    """The fused ranking of ``record``'s candidates from its matrix and regression runs."""
    ids = [c.id for c in record.candidates]
    reg = record.regression
    votes: VerifierEvidence = {cid: {"votes": n} for cid, n in record.votes.items()}
    clusters: VerifierEvidence = {
        m: {"cluster_size": cl.size} for cl in record.clusters for m in cl.members
    }
    applies: VerifierEvidence = {
        cid: {
            "applies": not never_applied(record.matrix, cid)
            and not (reg and reg.candidates.get(cid) and reg.candidates[cid].status == "no-apply")
        }
        for cid in ids
    }
    regressions: VerifierEvidence = (
        {cid: {"regressions": reg.regressions_of(cid)} for cid in ids} if reg else {}
    )
    return fuse(ids, [votes, clusters, applies, regressions], rule)


def _broken_tests(
    reg: RegressionRecord | None, ids: list[str]
) -> dict[str, list[str] | None] | None:
    """Per candidate, the existing tests it breaks (None: not measured), for the selector."""
    if reg is None or not reg.baseline_passing:
        return None
    out: dict[str, list[str] | None] = {}
    for cid in ids:
        c = reg.candidates.get(cid)
        out[cid] = list(c.regressions) if c and c.status == "ok" else None
    return out


def _select(
    problem: Problem, top: list[Candidate], ask: Callable[[], SelectorOutcome]
) -> SelectorOutcome:
    """``ask()`` (the selector); anything it raises but an interrupt (a sandbox failure while
    running a selector-written test, a bug) falls back to the top-voted candidate, recorded
    as ``selector-error`` with the reason and retried by the next run: the candidates and
    their votes are never thrown away."""
    try:
        return ask()
    except Interrupted:
        raise
    except Exception as e:
        log.warning("%s: the selector failed (%s); falling back to the votes", problem.id, e)
        return SelectorOutcome(
            chosen_id=top[0].id,
            reason=f"fell back to the top-voted candidate: selector error "
            f"({type(e).__name__}: {str(e)[:500]})",
            fallback=True,
            fallback_kind="selector-error",
        )


def run_selection(
    problem: Problem,
    candidates: CandidateSet,
    hub: ModelHub,
    pool: SandboxLeases,
    store: RunStore,
    config: Config,
    *,
    cache: ExecutionCache | None = None,
) -> SelectionRecord:
    """Choose one patch for ``problem`` among ``candidates`` and save the record."""
    fingerprint = config.fingerprint("selection")
    digest = input_digest(candidates, config)
    previous = store.load_record(problem.id, RECORD_NAME, SelectionRecord, fingerprint)
    if (
        previous is not None
        and previous.input_digest == digest
        and previous.fallback_kind not in RETRYABLE_FALLBACKS
    ):
        return previous

    start = time.monotonic()
    prepared, stripped = prepare_candidates(candidates, config, base_files(pool))
    record = SelectionRecord(
        problem_id=problem.id,
        input_digest=digest,
        candidates=prepared.candidates,
        stripped=stripped,
        tests=prepared.tests,
        voting=config.selection.voting,
    )
    if prepared.candidates:
        cache = cache or ExecutionCache(pool.lease, timeout=config.sandbox.script_timeout_s)
        runs_before = cache.runs
        workers = pool_workers(pool, config)
        _run_verifiers(record, prepared, cache, config, workers)
        _choose(record, problem, hub, pool, cache, config, workers)
        record.executions = cache.runs - runs_before
    else:
        record.reason = "no candidates (none given, or all empty after stripping test-file edits)"
    record.seconds = round(time.monotonic() - start, 3)
    store.save_record(problem.id, RECORD_NAME, record, fingerprint)
    return record


def _run_verifiers(
    record: SelectionRecord,
    prepared: CandidateSet,
    cache: ExecutionCache,
    config: Config,
    workers: int,
) -> None:
    """The test matrix and (alongside) the regression verifier, then votes, clusters and
    the fused ranking the top-k comes from."""
    sel = config.selection
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="verifiers") as ex:
        regression = (
            ex.submit(
                run_regression,
                prepared.candidates,
                cache,
                sel,
                test_dirs=config.context.test_dirs,
                workers=workers,
            )
            if sel.regression and len(prepared.candidates) > 1
            else None
        )
        matrix = run_matrix(prepared.candidates, prepared.tests, cache, workers=workers)
        record.regression = regression.result() if regression else None
    record.matrix = matrix
    record.votes = count_votes(matrix, sel.voting)
    record.clusters = behaviour_clusters(matrix)
    record.ranking = rank_candidates(prepared.candidates, matrix, sel.voting)
    record.fusion = fuse_evidence(record, sel.fusion)
    record.top_k = record.fusion.top_k(sel.top_k)


def _choose(
    record: SelectionRecord,
    problem: Problem,
    hub: ModelHub,
    pool: SandboxLeases,
    cache: ExecutionCache,
    config: Config,
    workers: int,
) -> None:
    """The selector's choice among the top-k (no model call for a single one); without a
    model (a provider that cannot be built) the top-voted candidate, recorded as a
    ``model-error`` fallback."""
    by_id = {c.id: c for c in record.candidates}
    top = [by_id[i] for i in record.top_k]
    if len(top) == 1:
        outcome = only_candidate(top[0])
    else:
        try:
            model = hub.model("primary", problem_id=problem.id, stage="selection")
        except ModelError as e:
            outcome = SelectorOutcome(
                chosen_id=top[0].id,
                reason=f"fell back to the top-voted candidate: model error ({e})",
                fallback=True,
                fallback_kind="model-error",
            )
        else:
            ask = _selector_call(record, problem, top, model, pool, cache, config, workers)
            outcome = _select(problem, top, ask)
    record.chosen_id = outcome.chosen_id
    record.reason = outcome.reason
    record.fallback, record.fallback_kind = outcome.fallback, outcome.fallback_kind
    record.selector_attempts = outcome.attempts
    record.selector_tests = outcome.tests
    record.transcript = outcome.transcript
    record.selector_corrections = outcome.corrections
    record.chosen_patch = by_id[record.chosen_id].patch


def _selector_call(
    record: SelectionRecord,
    problem: Problem,
    top: list[Candidate],
    model: Model,
    pool: SandboxLeases,
    cache: ExecutionCache,
    config: Config,
    workers: int,
) -> Callable[[], SelectorOutcome]:
    """``run_selector`` with what it is shown: the issue, the votes, the original files the
    top candidates edit, the test voting for most of them and the regressions."""
    sel = config.selection
    example = _example_test(record.tests, record.matrix, record.top_k, sel.voting)
    example_results = (
        {row: record.matrix.cell(row, example.digest) for row in [ORIGINAL, *record.top_k]}
        if example
        else None
    )
    paths: list[str] = []
    for c in top:
        paths += [p for p in touched_files(c.patch) if p not in paths]
    return partial(
        run_selector,
        candidates=top,
        issue=problem.issue,
        votes=record.votes,
        files=read_original_files(problem, pool, paths, sel.max_file_chars),
        example_test=example,
        example_results=example_results,
        regressions=_broken_tests(record.regression, record.top_k),
        model=model,
        run_test=_test_runner(cache, top, workers, sel.max_output_chars_shown),
        config=sel,
        templates=config.prompt_templates(),
        language=problem.test_language,
        key=f"{problem.id}:",
    )


def _test_runner(
    cache: ExecutionCache, top: list[Candidate], workers: int, output_chars: int
) -> RunTest:
    """Runs a selector-written test on the original code and each top candidate at once."""

    def run_test(script: Script) -> dict[str, Cell]:
        rows: list[tuple[str, str | None]] = [(ORIGINAL, None)] + [(c.id, c.patch) for c in top]
        with ThreadPoolExecutor(max_workers=max(1, min(workers, len(rows)))) as ex:
            futs = {
                row: ex.submit(run_cell, cache, patch, script, output_chars) for row, patch in rows
            }
            return {row: f.result() for row, f in futs.items()}

    return run_test
