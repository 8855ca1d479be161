"""Fusing the verifiers' evidence into one ranking, before the selector.

Evidence per candidate: reproduction-test votes (``voting.py``, strict rule by default),
regression failures (``regression.py``: the repository's own tests that passed on the
original code and fail with the candidate), behaviour-cluster size (how many candidates
behave the same on every test), and whether the patch applies at all. The selector's
judgement comes last, among the candidates this ranking keeps.

Default rule, ``regressions-then-votes`` (no labels needed):

1. Candidates whose patch never applied are set aside unless nothing else is left.
2. Among the rest, the *supported* ones are those with at least one vote (all of them
   when no candidate has a vote): a no-op breaks nothing, so regressions alone must not
   let it beat a fix the reproduction tests support.
3. Among the supported, keep those with the fewest regressions: every candidate that
   breaks a test is dropped unless all of them do (then the least damaging ones stay).
   A candidate without regression evidence (not run, budget spent) counts as breaking
   nothing.
4. Order the kept ones by votes, then cluster size (agreement between independent
   samples), then fewer regressions, then id; the dropped ones follow in the same order.

The selector sees the first ``top_k`` *kept* candidates. Never a tie-break: how many
systems proposed a patch (a popularity bias, not evidence).

``votes`` is the paper's rule: every applying candidate is kept, ordered by votes.

Known limit: an issue can ask to change behaviour an existing test asserts (SWE-bench's
test patches often update such tests). A right fix then "breaks" that test; if another
voted-for candidate does not, the rule drops the right fix. The record keeps every
candidate's broken tests so this shows in ``show``/``report`` (false positives are counted
there when candidates are graded); ``selection.fusion = "votes"`` turns the rule off.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal, TypedDict

from pydantic import BaseModel, Field

FusionRule = Literal["regressions-then-votes", "votes"]


class Evidence(BaseModel):
    """Everything the verifiers said about one candidate."""

    id: str
    votes: int = 0
    cluster_size: int = 1
    applies: bool = True
    regressions: int | None = None
    """Tests broken (None: no regression evidence)."""
    kept: bool = True
    why: str = ""
    """Why the fusion rule kept or dropped it."""


class FusedRanking(BaseModel):
    rule: str = "votes"
    ranking: list[Evidence] = Field(default_factory=list)
    """Kept candidates first, each group best first."""

    @property
    def kept(self) -> list[str]:
        return [e.id for e in self.ranking if e.kept]

    def top_k(self, k: int) -> list[str]:
        return (self.kept or [e.id for e in self.ranking])[:k]

    def tied_best(self) -> list[str]:
        """The kept candidates tied with the first on votes (the expectation over them is
        the rule's accuracy without a selector)."""
        kept = [e for e in self.ranking if e.kept]
        if not kept:
            return []
        return [e.id for e in kept if e.votes == kept[0].votes]


class EvidencePart(TypedDict, total=False):
    """What one verifier says about one candidate: any of ``Evidence``'s fields."""

    votes: int
    cluster_size: int
    applies: bool
    regressions: int | None


VerifierEvidence = Mapping[str, EvidencePart]
"""One verifier's evidence: candidate id -> what it says about that candidate (a candidate
it says nothing about keeps ``Evidence``'s defaults)."""


def _order(e: Evidence) -> tuple:
    return (-e.votes, -e.cluster_size, e.regressions or 0, e.id)


def gather(ids: Sequence[str], evidence: Sequence[VerifierEvidence]) -> list[Evidence]:
    """Each candidate's evidence from every verifier (later ones win on a shared field)."""
    merged: list[Evidence] = []
    for cid in ids:
        fields: dict[str, object] = {"id": cid}
        for verifier in evidence:
            fields.update(verifier.get(cid, {}))
        merged.append(Evidence.model_validate(fields))
    return merged


def fuse(
    ids: Sequence[str],
    evidence: Sequence[VerifierEvidence],
    rule: FusionRule = "regressions-then-votes",
) -> FusedRanking:
    """Rank ``ids`` on the verifiers' ``evidence`` (see the module docstring)."""
    ev = gather(ids, evidence)
    usable = [e for e in ev if e.applies] or ev
    for e in ev:
        if e not in usable:
            e.kept, e.why = False, "the patch never applied"
    if rule == "votes":
        for e in usable:
            e.why = "votes only"
    else:
        supported = [e for e in usable if e.votes > 0] or usable
        fewest = min((e.regressions or 0) for e in supported)
        for e in usable:
            broken = e.regressions or 0
            if e not in supported:
                e.kept, e.why = False, "no vote while other candidates have some"
            elif broken > fewest:
                e.kept = False
                e.why = (
                    f"breaks {broken} existing test(s); another supported candidate breaks {fewest}"
                )
            else:
                e.why = (
                    "breaks no existing test"
                    if broken == 0
                    else f"breaks {broken} existing test(s), as few as any supported candidate"
                )
                if e.regressions is None:
                    e.why = "no regression evidence"
    ranking = sorted((e for e in ev if e.kept), key=_order) + sorted(
        (e for e in ev if not e.kept), key=lambda e: (not e.applies, *_order(e))
    )
    return FusedRanking(rule=rule, ranking=ranking)
