"""Adaptive sampling (``generation.adaptive``): trajectories start in waves of
``generation.adaptive_wave``; after each wave the stop rule (``generation/stopping.py``) looks
at the finished candidates -- their behaviour clusters and strict votes on the final tests
written so far, run through the problem's execution cache (so selection reuses every run),
and whether any test reproduces the issue -- and decides to stop, continue, or widen the
temperature ladder (``generation.temperatures``: the first wave samples the first
temperature; each ``widen`` adds the next), up to ``generation.samples`` trajectories.

Every decision and its evidence is saved in ``problems/<id>/adaptive.json`` (fingerprinted
with the generation stage) before the next wave starts, so a rerun replays the recorded
decisions instead of deciding again.
"""

from __future__ import annotations

from codemonkeys.candidates import CandidateSet
from codemonkeys.config import GenerationConfig
from codemonkeys.execution import ExecutionCache
from codemonkeys.generation.records import AdaptiveRecord, ClusterEvidence, WaveEvidence
from codemonkeys.generation.stopping import StopRule
from codemonkeys.records import Record
from codemonkeys.selection.matrix import run_matrix
from codemonkeys.selection.voting import VotingRule, behaviour_clusters, count_votes

ADAPTIVE_RECORD = Record.ADAPTIVE


def stop_rule(gen: GenerationConfig) -> StopRule:
    return StopRule(
        agreement=gen.adaptive_agreement,
        min_cluster=gen.adaptive_min_cluster,
        min_votes=gen.adaptive_min_votes,
    )


def temperature_for(index: int, ladder: list[float], in_use: int) -> float:
    """Trajectory ``index`` cycles through the temperatures in use."""
    active = ladder[: max(1, in_use)]
    return active[index % len(active)]


def wave_evidence(
    candidates: CandidateSet,
    *,
    cache: ExecutionCache,
    state: AdaptiveRecord,
    wave: int,
    voting: VotingRule,
    workers: int,
) -> WaveEvidence:
    """What the stop rule sees after wave ``wave``: every final test run on the original code and
    on every candidate (cached runs are not repeated), clusters by behaviour, votes."""
    matrix = run_matrix(candidates.candidates, candidates.tests, cache, workers=workers)
    votes = count_votes(matrix, voting)
    trajectories = {c.id: len(c.sources) for c in candidates.candidates}
    clusters = [
        ClusterEvidence(
            members=cl.members,
            trajectories=sum(trajectories[m] for m in cl.members),
            votes=max(votes[m] for m in cl.members),
        )
        for cl in behaviour_clusters(matrix)
    ]
    clusters.sort(key=lambda c: (-c.trajectories, -c.votes))
    return WaveEvidence(
        started=state.started_at(wave),
        limit=state.limit,
        with_patch=sum(trajectories.values()),
        tests=len(matrix.tests),
        reproducing_tests=sum(not matrix.original(t).passed for t in matrix.tests),
        clusters=clusters,
        temperatures_in_use=state.in_use_at(wave),
        ladder=len(state.ladder),
    )
