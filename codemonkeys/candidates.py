"""Candidate patches and tests: what generation and ensembling hand to selection."""

from __future__ import annotations

import hashlib
import re

from pydantic import BaseModel, Field

from codemonkeys.execution import Script


class Candidate(BaseModel):
    id: str
    """Stable, short: ``c<digest>`` of the normalised patch."""
    patch: str
    sources: list[str] = Field(default_factory=list)
    """Who proposed it: ``codemonkeys:traj-3``, ``<system name>`` for ensembled predictions."""

    @classmethod
    def from_patch(cls, patch: str, source: str) -> Candidate:
        return cls(id=candidate_id(patch), patch=patch, sources=[source])


class CandidateSet(BaseModel):
    """Distinct candidates and distinct tests for one problem."""

    candidates: list[Candidate] = Field(default_factory=list)
    tests: list[Script] = Field(default_factory=list)

    def add_patch(self, patch: str, source: str) -> Candidate | None:
        """Add unless empty; merge sources of duplicates (whitespace-only differences)."""
        if not patch or not patch.strip():
            return None
        cid = candidate_id(patch)
        for c in self.candidates:
            if c.id == cid:
                if source not in c.sources:
                    c.sources.append(source)
                return c
        cand = Candidate(id=cid, patch=patch, sources=[source])
        self.candidates.append(cand)
        return cand

    def add_test(self, script: Script) -> None:
        if script.content.strip() and all(t.digest != script.digest for t in self.tests):
            self.tests.append(script)


def normalize_patch(patch: str) -> str:
    """Whitespace-insensitive form used to detect duplicates: drops index lines and
    trailing whitespace, collapses runs of blank lines and inner whitespace."""
    lines = []
    for line in patch.replace("\r\n", "\n").splitlines():
        if line.startswith("index "):
            continue
        if line.startswith("@@"):
            line = "@@"  # hunk offsets differ between tools
        line = re.sub(r"[ \t]+", " ", line.rstrip())
        if line in ("+", "-", " ", ""):
            continue
        lines.append(line)
    return "\n".join(lines)


def candidate_id(patch: str) -> str:
    return "c" + hashlib.sha256(normalize_patch(patch).encode()).hexdigest()[:8]
