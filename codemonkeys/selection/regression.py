"""The regression verifier: the repository's own tests, run on the original code and on
every candidate. A correct fix should not break tests that passed before it.

Steps for one problem (``run_regression``):

1. **Discovery** and **framework** (``regression_discovery.py``): the repository's test
   files related to the source files the candidates edit, by path convention and by import,
   never the dataset's gold tests; the runner (Django, sympy, pytest, unittest, Go, npm or
   ``selection.regression_command``) and its command.
2. **Impact** (``regression_impact.py``, ``selection.regression_impact``): for pytest, the
   files run once on the original code with probes in the edited files; the plan keeps the
   single tests that execute the candidates' changed lines or edited functions (its whole
   files when none does). ``RegressionRecord.impact`` says what it found.
3. **Runs** inside the problem's sandboxes, each (patch, command) once through the
   problem's ``ExecutionCache``, within ``selection.regression_budget_s``: the original
   code twice, then each distinct candidate once.
4. **Outcomes** per test (``regression_outcomes.py``): JUnit XML where the runner wrote it,
   the runner's own report otherwise, the exit code as the last resort.
5. **Verdicts**: per candidate, the tests that passed on *both* runs of the original and
   fail (or error) with the candidate. A test whose two original runs differ is flaky and
   never counts.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, Field

from codemonkeys.candidates import Candidate
from codemonkeys.config import SelectionConfig
from codemonkeys.execution import ISOLATE_PYTHONPATH, ExecutionCache, patch_digest
from codemonkeys.sandbox.base import Sandbox
from codemonkeys.selection.regression_discovery import JUNIT_PATH, LOG_PATH, OUT_DIR
from codemonkeys.selection.regression_impact import ImpactRecord, narrow_by_impact
from codemonkeys.selection.regression_outcomes import FAILING, SUITE, parse_outcomes
from codemonkeys.selection.regression_plan import Plan, narrowed, plan_regression

log = logging.getLogger(__name__)

_KEEP_OUTPUT_CHARS = 2000
_MAX_LOG_BYTES = 4_000_000
MIN_REPORTED_SHARE = 0.9
"""A candidate's run that exits 0 must report at least this share of the tests that passed
on the original code to count as evidence."""


# -- records -------------------------------------------------------------------------------
class SuiteRun(BaseModel):
    """One run of the regression command on one patch (None = the original code)."""

    patch_applied: bool = True
    exit_code: int | None = None
    timed_out: bool = False
    seconds: float = 0.0
    parser: str = ""
    """Which parser gave ``outcomes``: junit, unittest, sympy, pytest-report, go-json,
    exit-code; empty when the patch did not apply or the sandbox failed."""
    outcomes: dict[str, str] = Field(default_factory=dict)
    """Test id -> passed / failed / error / skipped."""
    error: str = ""
    """Patch or sandbox error."""
    output_tail: str = ""


class CandidateRegressions(BaseModel):
    status: Literal["ok", "not-run", "no-apply", "error", "no-evidence"]
    """ok: compared with the original; not-run: the budget ran out first (no evidence);
    no-apply / error: the patch did not apply / the sandbox failed (no evidence);
    no-evidence: the run ended well but reported too few of the tests that passed on the
    original (an interpreter ended early, a runner hijacked): never a clean verdict."""
    regressions: list[str] = Field(default_factory=list)
    """Tests that passed on both original runs and fail or error with the candidate."""
    run: SuiteRun | None = None


class RegressionRecord(BaseModel):
    """What the regression verifier ran and found, saved inside ``selection.json``."""

    source: Literal["discovered", "config", "none"] = "none"
    framework: str = "none"
    command: str = ""
    test_files: list[str] = Field(default_factory=list)
    reasons: dict[str, str] = Field(default_factory=dict)
    """Why each test file was chosen (name / import / config)."""
    impact: ImpactRecord | None = None
    """What the impact run found (``selection.regression_impact``): the tests kept (the
    plan then runs those, ``command`` says how), the files that executed the edit, seconds."""
    cut_files: list[str] = Field(default_factory=list)
    """Test files left out because the original code's runs could not finish within
    ``selection.regression_timeout_s`` with them (the plan was halved, best files kept)."""
    original_runs: list[SuiteRun] = Field(default_factory=list)
    flaky: list[str] = Field(default_factory=list)
    baseline_passing: int = 0
    """Tests that passed on both runs of the original code."""
    candidates: dict[str, CandidateRegressions] = Field(default_factory=dict)
    skipped_reason: str = ""
    """Why nothing ran (no related tests, the original run failed to produce outcomes...)."""
    seconds: float = 0.0

    def regressions_of(self, candidate_id: str) -> int | None:
        """Number of regressions, or None when there is no evidence for the candidate."""
        c = self.candidates.get(candidate_id)
        if c is None or c.status != "ok":
            return None
        return len(c.regressions)


# -- verdicts ------------------------------------------------------------------------------
def flaky_tests(first: dict[str, str], second: dict[str, str]) -> list[str]:
    """Tests whose outcome differs between two runs of the same code."""
    return sorted(t for t in set(first) | set(second) if first.get(t) != second.get(t))


def baseline(first: dict[str, str], second: dict[str, str]) -> set[str]:
    """Tests that passed on both runs of the original code."""
    return {t for t, s in first.items() if s == "passed" and second.get(t) == "passed"}


def reported_share(passing: set[str], candidate: SuiteRun) -> float:
    """The share of the original's passing tests that the candidate's run reports at all."""
    if not passing:
        return 1.0
    return sum(1 for t in passing if t in candidate.outcomes) / len(passing)


def lacks_evidence(passing: set[str], candidate: SuiteRun) -> bool:
    """A run that exits 0 (or reports only the exit code) without reporting most of the
    original's passing tests says nothing about them: ``sys.exit(0)`` at import, a runner
    made to exit early. (A run that fails while reporting them counts them as broken.)"""
    if SUITE in passing:
        return False
    if candidate.parser == "exit-code":
        return candidate.exit_code == 0
    return candidate.exit_code == 0 and reported_share(passing, candidate) < MIN_REPORTED_SHARE


def regressions(passing: set[str], candidate: SuiteRun) -> list[str]:
    """Baseline-passing tests that fail or error with the candidate. A baseline test the
    candidate's run does not report at all counts too when that run failed (exit != 0): an
    import or collection error stopped it (with only an exit code left, every baseline test
    is broken). Missing from a successful run, it is not counted."""
    if candidate.parser == "exit-code" and SUITE not in passing:
        return sorted(passing) if candidate.exit_code != 0 else []
    failed_run = candidate.exit_code != 0
    return sorted(
        t
        for t in passing
        if candidate.outcomes.get(t) in FAILING or (failed_run and t not in candidate.outcomes)
    )


# -- running -------------------------------------------------------------------------------
def run_suite(
    sandbox: Sandbox, patch: str | None, command: str, timeout: float, junit: bool
) -> SuiteRun:
    """Apply ``patch`` on a clean sandbox, run ``command`` from the repo root and parse the
    outcomes (the runner's output goes to a file, so no output cap cuts the report). The
    runner starts isolated: no user site, the repository root off ``PYTHONPATH`` (a
    ``sitecustomize.py`` there is not run at start-up; runners put the root on their path
    themselves once started)."""
    if patch and patch.strip():
        applied = sandbox.apply_patch(patch)
        if not applied.ok:
            return SuiteRun(patch_applied=False, error=applied.error[-_KEEP_OUTPUT_CHARS:])
    root = sandbox.workdir.rstrip("/")
    res = sandbox.run(
        f"rm -rf {OUT_DIR} && mkdir -p {OUT_DIR} && {ISOLATE_PYTHONPATH}export PYTHONNOUSERSITE=1"
        f" && ( {command} ) > {LOG_PATH} 2>&1",
        timeout=timeout,
    )
    output = _read_text(sandbox, f"{root}/{LOG_PATH}")
    xml = _read_text(sandbox, f"{root}/{JUNIT_PATH}") if junit else None
    parser, outcomes = ("", {}) if res.timed_out else parse_outcomes(output, xml, res.exit_code)
    return SuiteRun(
        exit_code=res.exit_code,
        timed_out=res.timed_out,
        seconds=round(res.seconds, 3),
        parser=parser,
        outcomes=outcomes,
        output_tail=output[-_KEEP_OUTPUT_CHARS:],
    )


def _read_text(sandbox: Sandbox, path: str) -> str:
    try:
        data = sandbox.read_file(path)
    except Exception:
        return ""
    return data[-_MAX_LOG_BYTES:].decode("utf-8", errors="replace")


class BudgetSpent(Exception):
    """The per-problem time budget for regression runs is spent."""


@dataclass
class _SuiteRunner:
    """Runs the plan's command on one patch, once per (patch, run) through the problem's
    cache, with what is left of the budget."""

    cache: ExecutionCache
    plan: Plan
    timeout_s: float
    deadline: float

    def __call__(self, patch: str | None, run_index: int = 0) -> SuiteRun:
        remaining = self.deadline - time.monotonic()
        if remaining <= 1:
            raise BudgetSpent
        timeout = min(self.timeout_s, remaining)
        command, junit = self.plan.command, self.plan.junit
        key = ("regression", command, patch_digest(patch), run_index)
        return self.cache.memo(key, lambda sb: run_suite(sb, patch, command, timeout, junit))


def run_regression(
    candidates: Sequence[Candidate],
    cache: ExecutionCache,
    config: SelectionConfig,
    *,
    test_dirs: Sequence[str],
    workers: int,
) -> RegressionRecord:
    """Discover, run and compare (see the module docstring). Never raises for a sandbox
    failure: the record says what could not be run."""
    start = time.monotonic()
    record = RegressionRecord()
    record.skipped_reason = _verify(
        record,
        candidates,
        cache,
        config,
        test_dirs=test_dirs,
        workers=workers,
        deadline=start + config.regression_budget_s,
    )
    for c in candidates:
        record.candidates.setdefault(c.id, CandidateRegressions(status="not-run"))
    record.seconds = round(time.monotonic() - start, 3)
    return record


def _verify(
    record: RegressionRecord,
    candidates: Sequence[Candidate],
    cache: ExecutionCache,
    config: SelectionConfig,
    *,
    test_dirs: Sequence[str],
    workers: int,
    deadline: float,
) -> str:
    """Fill ``record`` step by step; returns why it stopped early ("" when it did not)."""
    try:
        with cache.lease() as sandbox:
            plan = plan_regression(sandbox, candidates, config, test_dirs)
    except Exception as e:  # the sandbox failed: no evidence, selection goes on
        log.warning("regression discovery failed: %s", e)
        return f"discovery failed: {type(e).__name__}: {e}"
    record.source, record.framework = plan.source, plan.framework
    record.test_files, record.reasons = plan.test_files, plan.reasons
    if config.regression_impact and plan.command:
        plan, record.impact = narrow_by_impact(
            plan, candidates, cache, test_dirs=test_dirs,
            timeout_s=config.regression_timeout_s, deadline=deadline,
        )  # fmt: skip
    record.command = plan.command
    if not plan.command:
        return "no related tests found" if not plan.test_files else "no runner for these tests"
    try:
        suite = _run_original(record, plan, cache, config, deadline)
    except BudgetSpent:
        return "the time budget ran out on the original code"
    except Exception as e:
        log.warning("regression run on the original code failed: %s", e)
        return f"the run on the original code failed: {type(e).__name__}: {e}"
    first, second = (r.outcomes for r in record.original_runs)
    record.flaky = flaky_tests(first, second)
    passing = baseline(first, second)
    record.baseline_passing = len(passing)
    if not passing:
        return "no test passed on the original code (both runs)"
    slowest = max(r.seconds for r in record.original_runs)

    def verdict(c: Candidate) -> CandidateRegressions:
        return _candidate_verdict(suite, c, passing, slowest, config.regression_timeout_s)

    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="regression") as ex:
        verdicts = list(ex.map(verdict, candidates))
    record.candidates.update({c.id: v for c, v in zip(candidates, verdicts, strict=True)})
    return ""


def _run_original(
    record: RegressionRecord,
    plan: Plan,
    cache: ExecutionCache,
    config: SelectionConfig,
    deadline: float,
) -> _SuiteRunner:
    """Both runs of the original code. When both time out, the plan is cut to its best
    half and run again (what cannot finish is no evidence), while the budget lasts."""
    while True:
        suite = _SuiteRunner(cache, plan, config.regression_timeout_s, deadline)
        with ThreadPoolExecutor(max_workers=2) as ex:
            record.original_runs = list(ex.map(suite, (None, None), (0, 1)))
        smaller = narrowed(plan, len(plan.test_files) // 2)
        if not all(r.timed_out for r in record.original_runs) or smaller is None:
            return suite
        record.cut_files += plan.test_files[len(smaller.test_files) :]
        record.test_files, record.command = smaller.test_files, smaller.command
        plan = smaller


def _candidate_verdict(
    suite: _SuiteRunner, c: Candidate, passing: set[str], slowest_original: float, timeout_s: float
) -> CandidateRegressions:
    """Run ``c`` and compare it with the original code's ``passing`` tests. A candidate that
    times out where the original took less than half the timeout broke every test; a
    slow suite's timeout is no evidence."""
    try:
        run = suite(c.patch)
    except BudgetSpent:
        return CandidateRegressions(status="not-run")
    except Exception as e:
        error = f"{type(e).__name__}: {e}"[-_KEEP_OUTPUT_CHARS:]
        return CandidateRegressions(status="error", run=SuiteRun(error=error))
    if not run.patch_applied:
        return CandidateRegressions(status="no-apply", run=run)
    if run.timed_out:
        broke = slowest_original < timeout_s / 2
        return CandidateRegressions(
            status="ok" if broke else "error",
            regressions=sorted(passing) if broke else [],
            run=run,
        )
    if lacks_evidence(passing, run):
        return CandidateRegressions(status="no-evidence", run=run)
    return CandidateRegressions(status="ok", regressions=regressions(passing, run), run=run)
