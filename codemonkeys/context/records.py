"""The context stage's record: ``ContextRecord`` (``context.json``), what the generation
stage receives. Data only; ``stage.py`` computes it, readers (report, show) load it.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from codemonkeys.context.packing import PackedFile, SkippedFile, render_files
from codemonkeys.context.ranking import RankingAttempt


class RelevantFile(BaseModel):
    path: str
    tokens: int
    summary: str = ""


class ContextRecord(BaseModel):
    """What the generation stage receives: the packed files and how they were chosen."""

    problem_id: str
    token_budget: int
    packing_budget: int
    """token_budget less the safety margin: what the packer filled."""
    enumerated_files: int = 0
    excluded_counts: dict[str, int] = Field(default_factory=dict)
    prefilter_skipped: list[str] = Field(default_factory=list)
    """Files the prefilter ranked below its share: the relevance model never read them."""
    relevance_counts: dict[str, int] = Field(default_factory=dict)
    relevance_from_cache: int = 0
    """Decisions answered by the cross-run decision cache (no call paid)."""
    relevant: list[RelevantFile] = Field(default_factory=list)
    parse_errors: list[str] = Field(default_factory=list)
    errors: list[str] = Field(default_factory=list)
    rankings: list[RankingAttempt] = Field(default_factory=list)
    ranking: list[str] = Field(default_factory=list)
    ranking_fallback: bool = False
    packed: list[PackedFile] = Field(default_factory=list)
    skipped: list[SkippedFile] = Field(default_factory=list)
    total_tokens: int = 0
    missing_decisions: int = 0
    """Files whose relevance call failed (an outage): they are asked again on resume."""
    failed_rankings: int = 0
    """Rankings whose call failed (an outage): they are asked again on resume."""
    metrics: dict[str, float] | None = None

    @property
    def missing(self) -> str:
        """Why this context is incomplete ("" when it is complete)."""
        parts = []
        if self.missing_decisions:
            parts.append(f"the relevance scan failed on {self.missing_decisions} file(s)")
        if self.failed_rankings:
            parts.append(f"{self.failed_rankings} of {len(self.rankings)} ranking(s) failed")
        return " and ".join(parts)

    def render(self) -> str:
        """The files as one text block for the generation stage's cached prompt prefix."""
        return render_files(self.packed)

    @property
    def paths(self) -> list[str]:
        return [f.path for f in self.packed]
