"""The selection stage's record: ``SelectionRecord`` (``selection.json``): the matrix, votes,
clusters, regression runs, fused ranking, the selector's transcript and its choice. Data
only; ``stage.py`` computes it, readers (report, show, analysis, ensembling) load it.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from codemonkeys.candidates import Candidate
from codemonkeys.execution import Script
from codemonkeys.llm.base import Message
from codemonkeys.selection.fusion import FusedRanking
from codemonkeys.selection.matrix import TestMatrix
from codemonkeys.selection.regression import RegressionRecord
from codemonkeys.selection.selector import SelectorTest
from codemonkeys.selection.voting import Cluster, RankedCandidate


class StrippedEdit(BaseModel):
    """A candidate whose test-file hunks were removed before selection."""

    original_id: str
    new_id: str | None
    """None: nothing but test files was edited, the candidate was dropped."""
    removed_files: list[str]


class SelectionRecord(BaseModel):
    problem_id: str
    input_digest: str = ""
    candidates: list[Candidate] = Field(default_factory=list)
    """The candidates selection considered (after stripping test-file edits)."""
    stripped: list[StrippedEdit] = Field(default_factory=list)
    tests: list[Script] = Field(default_factory=list)
    voting: str = "strict"
    matrix: TestMatrix = Field(default_factory=TestMatrix)
    votes: dict[str, int] = Field(default_factory=dict)
    clusters: list[Cluster] = Field(default_factory=list)
    ranking: list[RankedCandidate] = Field(default_factory=list)
    """Votes-only ranking (the paper's rule)."""
    regression: RegressionRecord | None = None
    """The regression verifier's runs and verdicts (None when turned off)."""
    fusion: FusedRanking = Field(default_factory=FusedRanking)
    """Every verifier's evidence per candidate and the fused ranking the top-k comes from."""
    top_k: list[str] = Field(default_factory=list)
    chosen_id: str | None = None
    chosen_patch: str = ""
    reason: str = ""
    fallback: bool = False
    fallback_kind: str | None = None
    selector_attempts: int = 0
    selector_tests: list[SelectorTest] = Field(default_factory=list)
    transcript: list[Message] = Field(default_factory=list)
    selector_corrections: list[str] = Field(default_factory=list)
    """Why each corrected selector reply could not be used (``SelectorOutcome.corrections``)."""
    executions: int = 0
    """Script and regression-suite runs this stage started (cache hits not counted)."""
    seconds: float = 0.0
