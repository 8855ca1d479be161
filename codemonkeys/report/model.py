"""The report's typed model: what ``report --json`` writes and every rendering reads."""

from __future__ import annotations

import time

from pydantic import BaseModel, Field

from codemonkeys.analysis.views import RunAnalysis
from codemonkeys.machine_time import SandboxSeconds

STAGES = ("relevance", "ranking", "tests", "edits", "selection")
"""Cost stages as written in calls.jsonl, in pipeline order."""
PHASES = ("context", "generation", "selection")
"""Wall-time phases as written in result.json's ``stage_seconds``."""


class StageCost(BaseModel):
    calls: int = 0
    cost_usd: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    model_seconds: float = 0.0


class ProblemRow(BaseModel):
    id: str
    status: str = "unknown"
    error: str | None = None
    evaluated: bool = False
    resolved: bool | None = None
    verdict: str | None = None
    """resolved | unresolved | ungraded (the harness never graded it) | None (not evaluated)"""
    ungraded_reason: str | None = None
    covered: bool | None = None
    candidates: int = 0
    correct_candidates: int | None = None
    trajectories: int = 0
    correct_trajectories: int | None = None
    chosen_id: str | None = None
    chosen_votes: int | None = None
    majority_correct: float | None = None
    """Top-voted candidate's correctness, ties averaged (the paper's majority vote)."""
    fused_correct: float | None = None
    """The fused rule's top (regressions then votes, no selector), ties averaged."""
    chosen_regressions: int | None = None
    """Existing tests the chosen candidate breaks (None: not measured)."""
    regression_flagged: int = 0
    """Candidates the regression verifier found breaking at least one test."""
    regression_flagged_correct: int = 0
    """...of which the harness graded correct (false positives)."""
    regression_flagged_wrong: int = 0
    """...of which the harness graded wrong (true positives)."""
    context_recall: float | None = None
    cost_usd: float = 0.0
    cost_by_stage: dict[str, float] = Field(default_factory=dict)
    stage_seconds: dict[str, float] = Field(default_factory=dict)
    sandbox_seconds: dict[str, SandboxSeconds] = Field(default_factory=dict)
    """Per phase: the sandboxes' container-seconds (result.json ``sandbox_seconds``)."""
    grading_seconds: float | None = None
    """Machine seconds ``swebench evaluate`` spent grading it (None: not recorded)."""


class Curve(BaseModel):
    name: str
    x_label: str
    y_label: str
    series: dict[str, list[float]]
    """Series name -> y values for x = 1..len."""
    problems: int
    note: str = ""


class Summary(BaseModel):
    problems: int = 0
    statuses: dict[str, int] = Field(default_factory=dict)
    evaluated: int = 0
    resolved: int = 0
    ungraded: int = 0
    """Problems whose chosen patch the harness never graded: not in any denominator."""
    resolve_rate: float | None = None
    coverage: float | None = None
    selection_accuracy: float | None = None
    random_pick: float | None = None
    random_pick_weighted: float | None = None
    majority_vote: float | None = None
    majority_vote_problems: int = 0
    fused_rule: float | None = None
    fused_rule_problems: int = 0
    regression_flagged: int = 0
    regression_flagged_correct: int = 0
    regression_flagged_wrong: int = 0
    context_recall: float | None = None
    context_recall_problems: int = 0
    total_cost_usd: float = 0.0
    cost_per_problem_usd: float | None = None
    calls: int = 0


class Report(BaseModel):
    run: str
    run_dir: str
    generated_at: float = Field(default_factory=time.time)
    run_status: str | None = None
    models: dict[str, str] = Field(default_factory=dict)
    summary: Summary = Field(default_factory=Summary)
    cost_by_stage: dict[str, StageCost] = Field(default_factory=dict)
    seconds_by_phase: dict[str, float] = Field(default_factory=dict)
    """Summed wall seconds per phase over problems (result.json stage_seconds)."""
    mean_seconds_by_phase: dict[str, float] = Field(default_factory=dict)
    sandbox_seconds_by_phase: dict[str, SandboxSeconds] = Field(default_factory=dict)
    """Summed over problems: container-seconds opening, resetting, running in and closing
    sandboxes per phase (``teardown``: closing them at the end); empty for runs made
    before it was recorded."""
    grading_seconds: float | None = None
    """Summed over problems: machine seconds of ``swebench evaluate`` (None: not recorded)."""
    curves: list[Curve] = Field(default_factory=list)
    problems: list[ProblemRow] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    analysis: RunAnalysis | None = None
    """Coverage forecasts, temperature view, adaptive decisions (``analysis/runview.py``)."""


class ProblemData(BaseModel):
    """One problem's row plus what the run-wide figures need from it."""

    row: ProblemRow
    labels: list[bool] = Field(default_factory=list)
    weighted: list[tuple[bool, int]] = Field(default_factory=list)
    has_candidate_labels: bool = False
    samples: tuple[int, int] | None = None
    attempts: list[list[bool]] | None = None
    votes: dict[str, int] = Field(default_factory=dict)
    ungraded_attempts: int = 0
    warnings: list[str] = Field(default_factory=list)
    """Records of this problem that did not parse as their type."""
