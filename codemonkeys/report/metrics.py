"""Metrics: pure functions over plain values (booleans, counts, vote maps), no IO.

Unit-tested with hand-computed numbers: resolve rate, coverage, selection accuracy,
random-pick expectation, majority-vote accuracy, the unbiased pass@k estimator and its
curves, the serial-scaling curves over edit attempts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

# the estimator lives in analysis/passk.py (also used by forecasts and what-if)
from codemonkeys.analysis.passk import pass_at_k, pass_at_k_curve  # noqa: F401


def frac(num: float, den: float) -> float | None:
    return num / den if den else None


def resolve_rate(resolved: Sequence[bool]) -> float | None:
    return frac(sum(map(bool, resolved)), len(resolved))


def coverage(candidate_labels: Sequence[Sequence[bool]]) -> float | None:
    """Fraction of problems where at least one candidate is correct (the oracle)."""
    return frac(sum(any(ls) for ls in candidate_labels), len(candidate_labels))


def selection_accuracy(chosen_correct: Sequence[bool], covered: Sequence[bool]) -> float | None:
    """Chosen-correct among problems that had a correct candidate to choose."""
    pairs = [(ch, cv) for ch, cv in zip(chosen_correct, covered, strict=True) if cv]
    return frac(sum(bool(ch) for ch, _ in pairs), len(pairs))


def random_pick_expectation(candidate_labels: Sequence[Sequence[bool]]) -> float | None:
    """Expected resolve rate of picking one *distinct* candidate uniformly at random.
    A problem without candidates contributes 0."""
    if not candidate_labels:
        return None
    return sum(sum(ls) / len(ls) if ls else 0.0 for ls in candidate_labels) / len(candidate_labels)


def weighted_random_pick_expectation(
    weighted_labels: Sequence[Sequence[tuple[bool, int]]],
) -> float | None:
    """Expected resolve rate of picking one *trajectory* at random: each distinct candidate
    weighted by how many trajectories produced it (duplicates are likelier picks)."""
    if not weighted_labels:
        return None
    total = 0.0
    for ls in weighted_labels:
        w = sum(max(wt, 0) for _, wt in ls)
        total += sum(max(wt, 0) for ok, wt in ls if ok) / w if w else 0.0
    return total / len(weighted_labels)


def majority_vote_expectation(votes: Mapping[str, int], labels: Mapping[str, bool]) -> float:
    """Expected correctness of picking the top-voted candidate, ties broken uniformly."""
    if not votes:
        return 0.0
    best = max(votes.values())
    top = [cid for cid, v in votes.items() if v == best]
    return sum(bool(labels.get(cid, False)) for cid in top) / len(top)


def mean(values: Iterable[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return sum(vals) / len(vals) if vals else None


def attempt_curves(
    problems: Sequence[Sequence[Sequence[bool]]], max_attempts: int | None = None
) -> tuple[list[float], list[float]]:
    """Serial scaling. ``problems[p][t][a]``: is trajectory t's edit after attempt a+1 correct?

    A trajectory that stopped after m attempts keeps its last edit for every larger budget
    (it would have submitted it). Returns, for budgets a = 1..A, the coverage (some
    trajectory of the problem correct) and the mean fraction of correct trajectories
    (pass@1 at that budget), each averaged over problems."""
    if not problems:
        return [], []
    a_max = max_attempts or max((len(t) for trajs in problems for t in trajs), default=0)
    cov: list[float] = []
    p1: list[float] = []
    for a in range(1, a_max + 1):
        c_sum = p_sum = 0.0
        for trajs in problems:
            states = [t[min(a, len(t)) - 1] if t else False for t in trajs]
            c_sum += any(states)
            p_sum += sum(states) / len(states) if states else 0.0
        cov.append(c_sum / len(problems))
        p1.append(p_sum / len(problems))
    return cov, p1
