"""Votes, behaviour clusters and the ranking that picks the top-k candidates.

Pure functions over a ``TestMatrix``: no sandbox, no model, so every rule is unit-tested on
crafted matrices.

Rules (``SelectionConfig.voting``):

- ``strict`` (default): test *t* votes for candidate *c* only if *t* does not pass on the
  original code (exit != 0, a timeout counts as not passing) and passes on *c* (exit 0).
  A test that already passes on the original code tells nothing about the issue, and the
  original implementation let such tests vote for every candidate.
- ``original``: the paper's rule, *t* votes for *c* when it exits 0 on *c*.

Identical tests count once: ``distinct_tests`` collapses tests that differ only in line
endings or trailing whitespace before the matrix is built, so each remaining column is
one vote.

Ranking (deterministic): candidates whose patch applies before ones that never applied,
then votes desc, behaviour-cluster size desc, candidate id asc. How many systems proposed
a patch is never a tie-break (popularity is not evidence). ``fusion.py`` combines this
with the regression verifier.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Literal

from pydantic import BaseModel

from codemonkeys.candidates import Candidate, script_identity
from codemonkeys.execution import Script
from codemonkeys.selection.matrix import TestMatrix

VotingRule = Literal["strict", "original"]


def distinct_tests(tests: Iterable[Script]) -> list[Script]:
    """Tests that differ only in line endings or trailing whitespace collapsed
    (``script_identity``; first occurrence kept, order kept). Indentation counts."""
    seen: set[str] = set()
    out: list[Script] = []
    for t in tests:
        key = script_identity(t)
        if t.content.strip() and key not in seen:
            seen.add(key)
            out.append(t)
    return out


def votes_for(matrix: TestMatrix, candidate_id: str, rule: VotingRule = "strict") -> list[str]:
    """Digests of the tests that vote for ``candidate_id``."""
    out = []
    for t in matrix.tests:
        if not matrix.cell(candidate_id, t).passed:
            continue
        if rule == "strict" and matrix.original(t).passed:
            continue
        out.append(t)
    return out


def count_votes(matrix: TestMatrix, rule: VotingRule = "strict") -> dict[str, int]:
    return {c: len(votes_for(matrix, c, rule)) for c in matrix.candidates}


class Cluster(BaseModel):
    """Candidates that behave identically on every test."""

    members: list[str]
    outcomes: list[str]
    """The shared verdict per test, in ``matrix.tests`` order."""

    @property
    def size(self) -> int:
        return len(self.members)


def behaviour_clusters(matrix: TestMatrix) -> list[Cluster]:
    """Group candidates by identical outcome vectors; largest cluster first, then by the
    first member's id, so the order is deterministic."""
    groups: dict[tuple[str, ...], list[str]] = {}
    for c in matrix.candidates:
        groups.setdefault(matrix.outcome_vector(c), []).append(c)
    clusters = [Cluster(members=sorted(m), outcomes=list(v)) for v, m in groups.items()]
    clusters.sort(key=lambda cl: (-cl.size, cl.members[0]))
    return clusters


def never_applied(matrix: TestMatrix, candidate_id: str) -> bool:
    """True when the patch failed to apply in every run (and there was at least one run)."""
    cells = matrix.cells.get(candidate_id, {})
    return bool(cells) and all(c.verdict == "no-apply" for c in cells.values())


class RankedCandidate(BaseModel):
    id: str
    votes: int
    cluster_size: int
    sources: int
    applies: bool


def rank_candidates(
    candidates: Sequence[Candidate], matrix: TestMatrix, rule: VotingRule = "strict"
) -> list[RankedCandidate]:
    """All candidates, best first (see module docstring for the order)."""
    votes = count_votes(matrix, rule)
    size_of = {m: cl.size for cl in behaviour_clusters(matrix) for m in cl.members}
    ranked = [
        RankedCandidate(
            id=c.id,
            votes=votes.get(c.id, 0),
            cluster_size=size_of.get(c.id, 1),
            sources=len(c.sources),
            applies=not never_applied(matrix, c.id),
        )
        for c in candidates
    ]
    ranked.sort(key=lambda r: (not r.applies, -r.votes, -r.cluster_size, r.id))
    return ranked


def top_k(ranked: Sequence[RankedCandidate], k: int) -> list[str]:
    """The ids of the first ``k`` ranked candidates, leaving out patches that never applied
    unless nothing else is left."""
    usable = [r.id for r in ranked if r.applies]
    return (usable or [r.id for r in ranked])[:k]
