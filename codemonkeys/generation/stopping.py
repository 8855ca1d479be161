"""The adaptive sampling stop rule: after each wave of trajectories, decide whether more
samples can still change the answer.

The evidence is what selection would see if it ran now: the distinct candidates with how
many trajectories produced each, their behaviour clusters on the tests written so far, the
strict votes, and how many tests reproduce the issue at all (fail on the original code).

- ``stop`` (budget): the maximum number of trajectories has started.
- ``widen``: no test reproduces the issue, or no trajectory produced a patch: the current
  temperatures are not finding it, so the next wave also samples the next temperature of
  the ladder (``continue`` when the ladder is already fully in use).
- ``stop`` (agreement): one behaviour cluster holds at least ``agreement`` of the
  trajectories with a patch (and at least ``min_cluster`` of them), a test reproducing the
  issue votes for it (``min_votes``), and no candidate outside it has as many votes.
  More samples would most likely join the majority or lose the vote to it.
- ``continue`` otherwise (disagreement, or an agreement no reproducing test supports).
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from codemonkeys.generation.records import Action, StopDecision, WaveEvidence


class StopRule(BaseModel):
    agreement: float = Field(default=0.6, gt=0, le=1)
    min_cluster: int = Field(default=2, ge=1)
    min_votes: int = Field(default=1, ge=0)


def decide(wave: int, ev: WaveEvidence, rule: StopRule) -> StopDecision:
    """The action after ``wave`` (0-based) given its evidence."""

    def out(action: Action, reason: str) -> StopDecision:
        return StopDecision(wave=wave, action=action, reason=reason, evidence=ev)

    if ev.started >= ev.limit:
        return out("stop", "budget: every allowed trajectory has run")
    can_widen = ev.temperatures_in_use < ev.ladder
    if ev.with_patch == 0 or ev.reproducing_tests == 0:
        what = "no patch yet" if ev.with_patch == 0 else "no test reproduces the issue"
        return out("widen" if can_widen else "continue", what)
    top = ev.clusters[0] if ev.clusters else None
    if top is None:
        return out("continue", "no candidate clusters")
    share = top.trajectories / ev.with_patch
    rivals = max((c.votes for c in ev.clusters[1:]), default=-1)
    if share < rule.agreement or top.trajectories < rule.min_cluster:
        return out("continue", f"disagreement: the largest cluster holds {share:.0%}")
    if top.votes < rule.min_votes or top.votes <= rivals:
        return out("continue", f"agreement ({share:.0%}) without a winning vote")
    return out("stop", f"agreement: {share:.0%} of patches behave alike, {top.votes} vote(s)")
