"""What a smaller configuration would have given, from a finished run's records alone.

Each problem's trajectories are subsampled without replacement: ``samples`` of those run
at the chosen ``temperatures``, each cut after ``attempts`` edit attempts (a trajectory
that stopped earlier keeps its last patch). For each configuration:

- ``coverage``: some drawn trajectory's patch is correct -- the unbiased pass@k estimator,
  exact.
- ``resolve_rate``: the drawn trajectories' candidates picked by majority vote (the run's
  strict votes per candidate; a patch the vote never saw has 0; ties averaged) is
  correct -- the expectation over every subset (or a seeded sample of them). The run's
  selector cannot be replayed without calls, so this is the paper's majority-vote
  selection, not the selector's.
- ``cost_usd``: the mean per problem: the fixed cost (context, selection) plus the drawn
  trajectories' test cost and their edit cost scaled by the share of attempts kept.

Correctness is the harness's: a patch it never graded (intermediate edits without
``evaluate --intermediate``) counts as not correct, and ``unlabelled`` says how often.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from pydantic import BaseModel, Field

from codemonkeys.analysis.passk import pass_at_k, subset_expectation


class TrajectoryOutcome(BaseModel):
    temperature: float
    candidates: list[str | None] = Field(default_factory=list)
    """Candidate id of the trajectory's patch after each edit attempt (None: no patch)."""
    correct: list[bool | None] = Field(default_factory=list)
    """Harness verdict of that patch (None: never graded)."""
    test_cost_usd: float = 0.0
    edit_cost_usd: float = 0.0

    def at(self, attempts: int) -> tuple[str | None, bool | None]:
        """The patch it would have submitted with ``attempts`` edit attempts."""
        if not self.candidates:
            return None, False
        i = min(attempts, len(self.candidates)) - 1
        return self.candidates[i], self.correct[i] if self.candidates[i] else False

    def cost(self, attempts: int) -> float:
        used = len(self.candidates)
        share = min(attempts, used) / used if used else 1.0
        return self.test_cost_usd + self.edit_cost_usd * share


class ProblemOutcome(BaseModel):
    id: str
    trajectories: list[TrajectoryOutcome]
    votes: dict[str, int] = Field(default_factory=dict)
    fixed_cost_usd: float = 0.0


class WhatIfConfig(BaseModel):
    samples: int
    attempts: int
    temperatures: list[float]

    @property
    def label(self) -> str:
        temps = "/".join(f"{t:g}" for t in self.temperatures)
        return f"{self.samples} samples x {self.attempts} attempts @ T={temps}"


class WhatIfRow(BaseModel):
    config: WhatIfConfig
    resolve_rate: float
    coverage: float
    cost_usd: float
    unlabelled: float = 0.0
    """Share of drawn patches the harness never graded (counted as not correct)."""


class WhatIfResult(BaseModel):
    problems: int
    margin: float
    rows: list[WhatIfRow] = Field(default_factory=list)
    best: WhatIfRow | None = None
    recommended: WhatIfRow | None = None
    """The cheapest configuration whose resolve rate is within ``margin`` of the best."""


def evaluate_config(problems: Sequence[ProblemOutcome], cfg: WhatIfConfig) -> WhatIfRow:
    resolve = cover = cost = unknown = drawn = 0.0
    for p in problems:
        trajs = [t for t in p.trajectories if t.temperature in cfg.temperatures]
        picks = [t.at(cfg.attempts) for t in trajs]
        n, k = len(picks), min(cfg.samples, len(picks))
        cover += pass_at_k(n, sum(bool(ok) for _, ok in picks), k)
        resolve += _majority_expectation(p.votes, picks, k)
        cost += p.fixed_cost_usd + (k * sum(t.cost(cfg.attempts) for t in trajs) / n if n else 0.0)
        unknown += sum(1 for cid, ok in picks if cid and ok is None)
        drawn += n
    m = max(len(problems), 1)
    return WhatIfRow(
        config=cfg,
        resolve_rate=resolve / m,
        coverage=cover / m,
        cost_usd=cost / m,
        unlabelled=unknown / drawn if drawn else 0.0,
    )


def _majority_expectation(
    votes: dict[str, int], picks: Sequence[tuple[str | None, bool | None]], k: int
) -> float:
    return subset_expectation(len(picks), k, lambda s: _majority(votes, [picks[i] for i in s]))


def _majority(votes: dict[str, int], picks: Sequence[tuple[str | None, bool | None]]) -> float:
    """Correctness of the top-voted distinct candidate among ``picks``, ties averaged."""
    labels = {cid: bool(ok) for cid, ok in picks if cid}
    if not labels:
        return 0.0
    best = max(votes.get(cid, 0) for cid in labels)
    top = [ok for cid, ok in labels.items() if votes.get(cid, 0) == best]
    return sum(top) / len(top)


def default_grid(problems: Sequence[ProblemOutcome]) -> list[WhatIfConfig]:
    """Samples 1, 2, 3, 5, half and all (at most the trajectories the run has at the
    temperatures); attempts 1, 2, 4, ... and all; every non-empty subset of the
    temperatures used (each alone and the whole ladder when it has more than 4)."""
    trajs = [t for p in problems for t in p.trajectories]
    n_max = max((len(p.trajectories) for p in problems), default=0)
    a_max = max((len(t.candidates) for t in trajs), default=0)
    temps = sorted({t.temperature for t in trajs})
    if not n_max or not a_max:
        return []
    samples = sorted({s for s in (1, 2, 3, 5, n_max // 2, n_max) if 1 <= s <= n_max})
    attempts = sorted({a for a in (1, 2, 4, 8, 16, a_max) if a <= a_max})
    subsets = [list(c) for r in range(1, len(temps) + 1) for c in itertools.combinations(temps, r)]
    if len(temps) > 4:
        subsets = [[t] for t in temps] + [temps]
    out = []
    for ts in subsets:  # no more samples than the run has at these temperatures
        have = max(sum(t.temperature in ts for t in p.trajectories) for p in problems)
        out += [
            WhatIfConfig(samples=s, attempts=a, temperatures=ts)
            for s in sorted({min(s, have) for s in samples})
            for a in attempts
        ]
    return out


def what_if(
    problems: Sequence[ProblemOutcome],
    *,
    margin: float = 0.02,
    configs: Sequence[WhatIfConfig] | None = None,
) -> WhatIfResult:
    """Every configuration of ``configs`` (default: ``default_grid``) and the cheapest one
    whose resolve rate is within ``margin`` (absolute) of the best."""
    rows = [evaluate_config(problems, c) for c in (configs or default_grid(problems))]
    result = WhatIfResult(problems=len(problems), margin=margin, rows=rows)
    if rows:
        result.best = max(rows, key=lambda r: (r.resolve_rate, r.coverage, -r.cost_usd))
        good = [r for r in rows if r.resolve_rate >= result.best.resolve_rate - margin - 1e-12]
        result.recommended = min(good, key=lambda r: (r.cost_usd, -r.resolve_rate))
    return result
