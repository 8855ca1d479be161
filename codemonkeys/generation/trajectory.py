"""One trajectory: the testing state machine, then the editing state machine, saved after
every step. Failures stay inside the trajectory: a model or sandbox error is recorded on it
(status "error", retried by the next run) and the other trajectories go on; a cost cap
(``BudgetExceeded``) is saved and re-raised so the stage stops cleanly and can resume later.
A conversation that outgrows the model's context window (``ContextLengthExceeded``, found
before sending or answered by the provider) ends the trajectory in the final status
``context_length_exceeded``; its last applied edit is still its candidate.
"""

from __future__ import annotations

import logging
from typing import Literal

from codemonkeys.errors import BudgetExceeded
from codemonkeys.generation.editing import run_editing
from codemonkeys.generation.records import TrajectoryRecord
from codemonkeys.generation.runtime import GenerationRuntime
from codemonkeys.generation.testing import run_testing
from codemonkeys.llm.base import ContextLengthExceeded, ModelError
from codemonkeys.sandbox.base import SandboxError

log = logging.getLogger(__name__)


def new_record(rt: GenerationRuntime, index: int) -> TrajectoryRecord:
    temps = rt.gen.temperatures
    language: Literal["python", "shell"] = (
        "shell" if "shell" in (rt.problem.test_language, rt.gen.test_language) else "python"
    )
    return TrajectoryRecord(index=index, temperature=temps[index % len(temps)], language=language)


def run_trajectory(
    rt: GenerationRuntime, rec: TrajectoryRecord, *, testing_only: bool = False
) -> TrajectoryRecord:
    """Run (or resume) ``rec`` to its end. ``testing_only`` stops after the testing state
    machine (ensembling generates tests this way)."""
    if rec.status == "error":  # an earlier invocation failed here: try again from its state
        rec.status = "running"
        rec.error = ""
    rt.event("trajectory_started", index=rec.index, state=rec.state)
    try:
        if rec.state == "testing":
            run_testing(rt, rec)
        if rec.state == "editing" and not testing_only:
            run_editing(rt, rec)
    except BudgetExceeded as e:
        rt.request_stop(e)
        rt.save(rec)
        rt.event("trajectory_stopped", index=rec.index, reason=str(e))
        raise
    except ContextLengthExceeded as e:  # a terminal state, not a failure: never retried
        rec.state = "finished"
        rec.status = "context_length_exceeded"
        rec.error = str(e)
        rt.save(rec)
    except Exception as e:  # ModelError, SandboxError, or a bug: this trajectory only
        if not _expected(e):
            log.exception("trajectory %s of %s failed", rec.index, rt.problem.id)
        rec.status = "error"
        rec.error = f"{type(e).__name__}: {e}"
        rt.save(rec)
    rt.event(
        "trajectory_finished",
        index=rec.index,
        status=rec.status,
        has_patch=bool(rec.final_patch),
        cost_usd=rec.total_cost,
    )
    return rec


def _expected(e: Exception) -> bool:
    return isinstance(e, ModelError | SandboxError)
