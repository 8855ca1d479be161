"""Coverage forecasts from the power law of repeated sampling (Large Language Monkeys,
Brown et al. 2024): coverage ``c(k) ~ exp(a * k**b)`` with a, b < 0, so
``log(-log c(k))`` is linear in ``log k``. The fit uses the run's own pass@k curve (the
unbiased estimator averaged over problems); the interval comes from refitting on problems
resampled with replacement (bootstrap), so it reflects how few problems a run has.
"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Sequence

from pydantic import BaseModel

from codemonkeys.analysis.passk import pass_at_k_curve

_EDGE = 1e-9


class PowerLawFit(BaseModel):
    """``log(-log c) = intercept + slope * log k``; ``flat`` is set when every point is 0
    or 1 (nothing to fit: the forecast stays there)."""

    intercept: float = 0.0
    slope: float = 0.0
    points: int = 0
    flat: float | None = None

    def coverage(self, k: float) -> float:
        if self.flat is not None:
            return self.flat
        return math.exp(-math.exp(self.intercept + self.slope * math.log(k)))


class Forecast(BaseModel):
    k: int
    coverage: float
    low: float | None = None
    high: float | None = None
    """The ``level`` bootstrap interval (None when too few problems to resample)."""


def fit_power_law(curve: Sequence[float], k_max: int | None = None) -> PowerLawFit | None:
    """Fit on ``curve[k-1]`` for k = 1..k_max (default: all). Points at 0 or 1 carry no
    slope information and are skipped; None when fewer than two points remain and the
    curve is not flat at 0 or 1."""
    points = [
        (math.log(k), math.log(-math.log(c)))
        for k, c in enumerate(curve[:k_max] if k_max else curve, start=1)
        if _EDGE < c < 1 - _EDGE
    ]
    used = list(curve[:k_max] if k_max else curve)
    if len(points) < 2:
        if used and all(c >= 1 - _EDGE for c in used):
            return PowerLawFit(flat=1.0, points=len(used))
        if used and all(c <= _EDGE for c in used):
            return PowerLawFit(flat=0.0, points=len(used))
        return None
    xs, ys = zip(*points, strict=True)
    slope, intercept = statistics.linear_regression(xs, ys)
    return PowerLawFit(intercept=intercept, slope=slope, points=len(points))


def forecast_coverage(
    samples: Sequence[tuple[int, int]],
    targets: Sequence[int],
    *,
    fit_k_max: int | None = None,
    bootstrap: int = 200,
    level: float = 0.9,
    seed: int = 0,
) -> list[Forecast]:
    """Forecast coverage at each k in ``targets`` from per-problem (n, c) counts (their
    unbiased pass@k curves), fitting on k <= ``fit_k_max`` (default: the largest n)."""
    k_fit = fit_k_max or max((n for n, _ in samples), default=0)
    curves = [pass_at_k_curve([s], k_fit) for s in samples] if k_fit else []
    return forecast_curves(curves, targets, bootstrap=bootstrap, level=level, seed=seed)


def forecast_curves(
    curves: Sequence[Sequence[float]],
    targets: Sequence[int],
    *,
    bootstrap: int = 200,
    level: float = 0.9,
    seed: int = 0,
) -> list[Forecast]:
    """Forecast the mean of per-problem coverage curves (``curves[p][k-1]``, equal lengths:
    pass@k over samples, or coverage over attempts) at each k in ``targets``; the interval
    refits on problems resampled with replacement. Empty when the mean cannot be fitted."""
    fit = fit_power_law(_mean_curve(curves)) if curves else None
    if fit is None:
        return []
    draws: list[PowerLawFit] = []
    if len(curves) > 1:
        rng = random.Random(seed)
        for _ in range(bootstrap):
            drawn = [curves[rng.randrange(len(curves))] for _ in curves]
            refit = fit_power_law(_mean_curve(drawn))
            if refit is not None:
                draws.append(refit)
    out = []
    for k in targets:
        values = sorted(f.coverage(k) for f in draws)
        low = high = None
        if len(values) >= 10:
            low = _quantile(values, (1 - level) / 2)
            high = _quantile(values, 1 - (1 - level) / 2)
        out.append(Forecast(k=k, coverage=fit.coverage(k), low=low, high=high))
    return out


def _mean_curve(curves: Sequence[Sequence[float]]) -> list[float]:
    length = min(len(c) for c in curves)
    return [sum(c[i] for c in curves) / len(curves) for i in range(length)]


def _quantile(sorted_values: Sequence[float], q: float) -> float:
    """Linear interpolation between order statistics."""
    pos = q * (len(sorted_values) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)
