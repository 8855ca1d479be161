"""The test matrix: every distinct test on every distinct candidate and on the original code.

Each cell goes through the problem's ``ExecutionCache``, so a (patch, test) pair that a
trajectory already ran, or that two threads ask for at once, runs exactly once. The work is
spread over a thread pool sized to the sandbox pool: the threads only wait on sandboxes.

A patch that does not apply, a timeout or a sandbox failure is a recorded cell, never an
exception: one broken candidate must not cost the others their results.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from pydantic import BaseModel, Field

from codemonkeys.candidates import Candidate
from codemonkeys.errors import BudgetExceeded
from codemonkeys.execution import ExecutionCache, Script, TestRun

log = logging.getLogger(__name__)

ORIGINAL = "original"
"""Row key of the unpatched code in ``TestMatrix.cells``."""

_KEEP_OUTPUT_CHARS = 1500


class Cell(BaseModel):
    """One (patch, test) outcome, small enough to keep for every pair."""

    verdict: str
    """fixed / unfixed / crash / timeout / no-apply (see ``TestRun.verdict``), or error when
    the sandbox itself failed."""
    exit_code: int | None = None
    seconds: float = 0.0
    output_tail: str = ""
    """The end of the output (or the patch error), for humans and the selector."""

    @property
    def passed(self) -> bool:
        """Exit 0 on applied code within the time limit."""
        return self.verdict == "fixed"

    @classmethod
    def from_run(cls, run: TestRun, keep: int = _KEEP_OUTPUT_CHARS) -> Cell:
        text = run.output if run.patch_applied else run.patch_error
        return cls(
            verdict=run.verdict,
            exit_code=run.exit_code,
            seconds=round(run.seconds, 3),
            output_tail=text[-keep:],
        )


class TestMatrix(BaseModel):
    """Outcomes keyed ``cells[row][test_digest]``; rows are candidate ids and ``ORIGINAL``."""

    __test__ = False  # not a pytest class

    tests: list[str] = Field(default_factory=list)
    """Test digests, in the order the tests were given."""
    candidates: list[str] = Field(default_factory=list)
    cells: dict[str, dict[str, Cell]] = Field(default_factory=dict)

    def cell(self, row: str, test: str) -> Cell:
        return self.cells[row][test]

    def original(self, test: str) -> Cell:
        return self.cells[ORIGINAL][test]

    def outcome_vector(self, candidate_id: str) -> tuple[str, ...]:
        return tuple(self.cells[candidate_id][t].verdict for t in self.tests)


def run_cell(
    cache: ExecutionCache, patch: str | None, script: Script, keep: int = _KEEP_OUTPUT_CHARS
) -> Cell:
    try:
        return Cell.from_run(cache.run(patch, script), keep)
    except BudgetExceeded:  # a stop (cap, Ctrl-C) is not a cell's verdict
        raise
    except Exception as e:  # the sandbox failed, not the script: record and go on
        log.warning("sandbox failure while running test %s: %s", script.digest, e)
        return Cell(verdict="error", output_tail=f"{type(e).__name__}: {e}"[-_KEEP_OUTPUT_CHARS:])


def run_matrix(
    candidates: Sequence[Candidate],
    tests: Sequence[Script],
    cache: ExecutionCache,
    *,
    workers: int,
) -> TestMatrix:
    """Run each test on the original code and on each candidate, ``workers`` at a time."""
    distinct: dict[str, Script] = {}
    for t in tests:
        distinct.setdefault(t.digest, t)
    rows: list[tuple[str, str | None]] = [(ORIGINAL, None)] + [(c.id, c.patch) for c in candidates]
    jobs = [
        (row, patch, digest, script) for row, patch in rows for digest, script in distinct.items()
    ]
    matrix = TestMatrix(
        tests=list(distinct),
        candidates=[c.id for c in candidates],
        cells={row: {} for row, _ in rows},
    )
    if not jobs:
        return matrix
    # Original-code cells first: every candidate's strict vote needs them.
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="matrix") as ex:
        futures = [
            (row, digest, ex.submit(run_cell, cache, patch, script))
            for row, patch, digest, script in jobs
        ]
        for row, digest, fut in futures:
            matrix.cells[row][digest] = fut.result()
    return matrix
