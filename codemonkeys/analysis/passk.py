"""The unbiased pass@k estimator (Chen et al. 2021) and expectations over random subsets.

``pass_at_k(n, c, k)`` is the probability that k samples drawn without replacement from n,
c of them correct, contain at least one correct one. ``subset_expectation`` generalises it
to any per-subset score (majority vote among the drawn candidates, say): exact over every
subset when there are few, else a seeded Monte Carlo mean.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable, Sequence


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k: 1 - C(n-c, k) / C(n, k).

    Computed as ``1 - prod_{i=n-c+1}^{n} (1 - k/i)``, which never forms the huge binomials.
    ``k > n`` is clamped to ``n`` (all samples drawn)."""
    if n <= 0:
        return 0.0
    if not 0 <= c <= n:
        raise ValueError(f"need 0 <= c <= n, got n={n} c={c}")
    k = min(max(k, 0), n)
    if k == 0:
        return 0.0
    if n - c < k:
        return 1.0
    prod = 1.0
    for i in range(n - c + 1, n + 1):
        prod *= 1.0 - k / i
    return 1.0 - prod


def pass_at_k_curve(samples: Sequence[tuple[int, int]], k_max: int | None = None) -> list[float]:
    """Mean pass@k over problems for k = 1..k_max; ``samples`` holds (n, c) per problem.

    A problem with fewer than k samples contributes pass@n (it has no more to draw), and a
    problem with n = 0 (nothing generated) contributes 0."""
    if not samples:
        return []
    k_max = k_max or max(n for n, _ in samples)
    return [sum(pass_at_k(n, c, k) for n, c in samples) / len(samples) for k in range(1, k_max + 1)]


def subset_expectation(
    n: int,
    k: int,
    score: Callable[[tuple[int, ...]], float],
    *,
    max_exact: int = 2000,
    draws: int = 500,
    seed: int = 0,
) -> float:
    """Mean of ``score(subset)`` over the k-subsets of ``range(n)`` (``k`` clamped to n).

    Every subset is scored when there are at most ``max_exact`` of them; otherwise
    ``draws`` subsets drawn uniformly with a seeded generator (so reports are repeatable).
    ``score`` of the items themselves with k = 1 and a 0/1 score equals pass@1."""
    if n <= 0:
        return 0.0
    k = min(max(k, 1), n)
    if math.comb(n, k) <= max_exact:
        subsets = list(itertools.combinations(range(n), k))
        return sum(score(s) for s in subsets) / len(subsets)
    rng = random.Random(seed)
    return sum(score(tuple(sorted(rng.sample(range(n), k)))) for _ in range(draws)) / draws
