"""What the report shows beyond its metrics, as typed records (computed by
``analysis.runview``, rendered by ``analysis.render``): coverage forecasts, the temperature
view, adaptive sampling's decisions; and the paper's cost shares per stage, shown beside
ours in the report's cost table (the paper's Table 1 layout)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from codemonkeys.analysis.forecast import Forecast

PAPER_COST_SHARES = {
    "relevance": 0.146,
    "ranking": 0.009,
    "tests": 0.192,
    "edits": 0.596,
    "selection": 0.058,
}
"""The CodeMonkeys paper's cost per stage, as shares of $2291.90 for SWE-bench Verified
(Table 1; docs/design-brief)."""


class CoverageForecast(BaseModel):
    axis: str
    """``samples`` (trajectories per problem) or ``attempts`` (edit attempts per trajectory)."""
    budget: int
    measured: float
    """Coverage measured at the run's budget."""
    problems: int
    forecasts: list[Forecast] = Field(default_factory=list)
    """At 2x and 4x the budget (90% bootstrap interval over problems)."""


class TemperatureRow(BaseModel):
    temperature: float
    trajectories: int
    coverage: float
    """Share of labelled problems where some trajectory at this temperature is correct."""
    only_here: list[str] = Field(default_factory=list)
    """Problems no other temperature solved."""


class TemperatureView(BaseModel):
    problems: int
    rows: list[TemperatureRow]
    union: float


class AdaptiveProblem(BaseModel):
    id: str
    trajectories: int
    limit: int
    waves: int
    final_action: str
    reason: str


class AdaptiveView(BaseModel):
    problems: list[AdaptiveProblem] = Field(default_factory=list)

    @property
    def saved_share(self) -> float:
        limit = sum(p.limit for p in self.problems)
        return 1 - sum(p.trajectories for p in self.problems) / limit if limit else 0.0


class RunAnalysis(BaseModel):
    forecasts: list[CoverageForecast] = Field(default_factory=list)
    temperatures: TemperatureView | None = None
    adaptive: AdaptiveView | None = None
