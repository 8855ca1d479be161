"""The run-level records of one problem: ``ProblemResult`` (``result.json``), its ``Status``
and ``StageTimes`` (``timing.json``).

A leaf: the jobs, the scheduler, the cluster executor and the readers (report, analysis)
all import these types, so they depend on nothing above the records.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from codemonkeys.machine_time import SandboxSeconds

RETRYABLE_FALLBACKS = ("budget", "model-error", "selector-error")
"""Selection fallbacks (``SelectionRecord.fallback_kind``) an outage or a cap caused: the
result is not final and the next invocation selects again."""

Status = Literal["done", "failed", "error", "budget_exhausted", "interrupted", "no_candidates"]
"""``done``: a patch was chosen; ``no_candidates``: every trajectory ended and none produced a
patch (the model's own outcome). Both are final. ``error``: an infrastructure failure (a
provider error after retries, a Docker/sandbox error, a relevance scan with failed calls)
left the problem unfinished; ``failed``: any other exception; ``budget_exhausted`` /
``interrupted``: a cost cap or Ctrl-C. These are retried by the next invocation, which
resumes from the saved records and pays no completed call twice."""
FINAL_STATUSES = ("done", "no_candidates")


class ProblemResult(BaseModel):
    id: str
    status: Status
    error: str = ""
    chosen_id: str | None = None
    chosen_patch: str = ""
    reason: str = ""
    candidates: list[dict[str, Any]] = Field(default_factory=list)
    """id, sources, votes per candidate (from the selection record)."""
    selection_fallback: str | None = None
    """The selection record's ``fallback_kind`` (e.g. ``model-error``: chosen by the votes
    because the selector failed); a retryable one makes the next invocation select again."""
    stage_seconds: dict[str, float] = Field(default_factory=dict)
    sandbox_seconds: dict[str, SandboxSeconds] = Field(default_factory=dict)
    """Per phase: container-seconds opening, resetting, running in, closing sandboxes."""
    cost_usd: float = 0.0
    finished_at: float = 0.0

    @property
    def finished(self) -> bool:
        """Final: a rerun keeps it as is."""
        return self.status in FINAL_STATUSES and self.selection_fallback not in RETRYABLE_FALLBACKS


class StageTimes(BaseModel):
    """Wall seconds per stage of one problem, summed over every invocation that worked on
    it (``problems/<id>/timing.json``, saved as each stage ends or stops)."""

    seconds: dict[str, float] = Field(default_factory=dict)
    sandbox: dict[str, SandboxSeconds] = Field(default_factory=dict)
    """Per phase (and ``teardown``): the sandboxes' container-seconds (``machine_time``)."""
