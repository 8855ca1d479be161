"""What a trajectory records: enough to resume it mid-way and to compute serial-scaling
curves later (every test version, every edit version, every (edit, test) pair run).

The large shared prefix of each conversation (system prompt, packed context, issue) is
not stored per trajectory: it is rebuilt from the stage's inputs on resume (the generation
fingerprint covers them), so saving after every step stays cheap.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from codemonkeys.candidates import CandidateSet
from codemonkeys.execution import Script, TestRun
from codemonkeys.llm.base import Message, Usage

TrajectoryState = Literal["testing", "editing", "finished"]
TrajectoryStatus = Literal[
    "running", "done", "exhausted", "no_test", "context_length_exceeded", "error"
]
"""``context_length_exceeded`` (the paper's CONTEXT_LENGTH_EXCEEDED): the conversation no
longer fits the model's context window; final, and its last applied edit still counts."""


class TestVersion(BaseModel):
    script: Script
    original: TestRun
    """The script's run on the original code."""
    phase: Literal["testing", "editing"]
    attempt: int
    """The model call (1-based, within its phase) that produced it."""


class EditVersion(BaseModel):
    text: str
    """The <edit> block as the model wrote it."""
    patch: str = ""
    """The git diff, empty when the edit could not be applied."""
    files: list[str] = Field(default_factory=list)
    errors: list[str] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
    attempt: int


class PairOutcome(BaseModel):
    """One (edit, test) pair as run during editing: the serial-scaling data point."""

    attempt: int
    test: int
    """Index into ``tests``."""
    edit: int
    """Index into ``edits``."""
    original: TestRun
    edited: TestRun


class Timing(BaseModel):
    """Wall-clock seconds this trajectory spent, by kind (not saved for equality checks:
    they differ between runs)."""

    model_s: float = 0.0
    exec_s: float = 0.0
    wait_s: float = 0.0
    """Waiting for the prompt-cache warm-up call of another trajectory."""


class TrajectoryRecord(BaseModel):
    index: int
    temperature: float
    language: Literal["python", "shell"] = "python"
    state: TrajectoryState = "testing"
    status: TrajectoryStatus = "running"
    error: str = ""
    test_messages: list[Message] = Field(default_factory=list)
    """The testing conversation after its shared prefix."""
    edit_messages: list[Message] = Field(default_factory=list)
    """The editing conversation after its shared prefix (system + context + issue)."""
    test_attempts: int = 0
    edit_attempts: int = 0
    tests: list[TestVersion] = Field(default_factory=list)
    edits: list[EditVersion] = Field(default_factory=list)
    pairs: list[PairOutcome] = Field(default_factory=list)
    current_test: int | None = None
    current_edit: int | None = None
    """The last edit that applied (its patch is the trajectory's candidate)."""
    test_approved: bool = False
    edit_approved: bool = False
    corrections: list[str] = Field(default_factory=list)
    """Why each unusable answer was not used (misparse, ``answer_cut``, ``edit_error``...),
    in order: the correction sent for it, or the end of the conversation when no attempt
    was left."""
    usage: dict[str, Usage] = Field(default_factory=dict)
    """Per cost stage: "tests", "edits"."""
    cost_usd: dict[str, float] = Field(default_factory=dict)
    calls: int = 0
    timing: Timing = Field(default_factory=Timing)

    @property
    def final_test(self) -> Script | None:
        return self.tests[self.current_test].script if self.current_test is not None else None

    @property
    def final_patch(self) -> str:
        return self.edits[self.current_edit].patch if self.current_edit is not None else ""

    @property
    def total_cost(self) -> float:
        return sum(self.cost_usd.values())


class GenerationResult(BaseModel):
    trajectories: list[TrajectoryRecord] = Field(default_factory=list)
    candidates: CandidateSet = Field(default_factory=CandidateSet)

    @property
    def errors(self) -> list[str]:
        return [f"traj-{t.index}: {t.error}" for t in self.trajectories if t.status == "error"]


Action = Literal["stop", "continue", "widen"]


class ClusterEvidence(BaseModel):
    members: list[str]
    """Candidate ids that behave identically on every test so far."""
    trajectories: int
    """Trajectories whose final patch is one of the members."""
    votes: int
    """The most strict votes any member has."""


class WaveEvidence(BaseModel):
    started: int
    """Trajectories started so far (all finished)."""
    limit: int
    """The most trajectories the problem may have (``generation.samples``)."""
    with_patch: int
    """Trajectories that ended with a patch."""
    tests: int = 0
    """Distinct final tests."""
    reproducing_tests: int = 0
    """Final tests that fail on the original code (a test that can tell a fix apart)."""
    clusters: list[ClusterEvidence] = Field(default_factory=list)
    """Largest (by trajectories) first."""
    temperatures_in_use: int = 1
    ladder: int = 1
    """Temperatures in ``generation.temperatures``."""


class StopDecision(BaseModel):
    wave: int
    action: Action
    reason: str
    evidence: WaveEvidence


class AdaptiveRecord(BaseModel):
    """The decisions taken after each wave, in order (the last is ``stop`` once done)."""

    wave_size: int
    limit: int
    ladder: list[float]
    decisions: list[StopDecision] = Field(default_factory=list)

    def started_at(self, wave: int) -> int:
        """Trajectories started once wave ``wave`` (0-based) has started."""
        return min(self.wave_size * (wave + 1), self.limit)

    def in_use_at(self, wave: int) -> int:
        """Temperatures of the ladder in use in wave ``wave``: one more per earlier widen."""
        widened = sum(d.action == "widen" for d in self.decisions[:wave])
        return min(1 + widened, len(self.ladder))
