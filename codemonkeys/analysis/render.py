"""The analysis views as rich tables (terminal) and as an HTML fragment (the report page)."""

from __future__ import annotations

import html
from typing import Any

from codemonkeys.analysis.forecast import Forecast
from codemonkeys.analysis.views import RunAnalysis
from codemonkeys.analysis.whatif import WhatIfResult, WhatIfRow


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.1f}%"


def _interval(f: Forecast) -> str:
    return "-" if f.low is None or f.high is None else f"{_pct(f.low)} - {_pct(f.high)}"


FORECAST_HEAD = ["axis", "budget", "measured", "at", "forecast", "90% interval", "problems"]
TEMP_HEAD = ["temperature", "trajectories", "coverage", "only this one solved"]
ADAPTIVE_HEAD = ["problem", "trajectories", "of", "waves", "last decision"]
WHATIF_HEAD = ["configuration", "resolve (vote)", "coverage", "cost / problem", "ungraded"]


def forecast_rows(analysis: RunAnalysis) -> list[list[str]]:
    return [
        [
            cf.axis,
            str(cf.budget),
            _pct(cf.measured),
            f"{f.k}",
            _pct(f.coverage),
            _interval(f),
            str(cf.problems),
        ]  # fmt: skip
        for cf in analysis.forecasts
        for f in cf.forecasts
    ]


def temperature_rows(analysis: RunAnalysis) -> list[list[str]]:
    view = analysis.temperatures
    if view is None:
        return []
    rows = [
        [f"{r.temperature:g}", str(r.trajectories), _pct(r.coverage), ", ".join(r.only_here) or "-"]
        for r in view.rows
    ]
    return rows + [["union", "", _pct(view.union), ""]]


def adaptive_rows(analysis: RunAnalysis) -> list[list[str]]:
    view = analysis.adaptive
    if view is None:
        return []
    return [
        [p.id, str(p.trajectories), str(p.limit), str(p.waves), f"{p.final_action}: {p.reason}"]
        for p in view.problems
    ]


def whatif_rows(result: WhatIfResult) -> list[list[str]]:
    def row(r: WhatIfRow, mark: str = "") -> list[str]:
        return [mark + r.config.label, _pct(r.resolve_rate), _pct(r.coverage),
                f"${r.cost_usd:.4f}", _pct(r.unlabelled)]  # fmt: skip

    rows = sorted(result.rows, key=lambda r: (-r.resolve_rate, r.cost_usd))
    return [row(r, "* " if r is result.recommended else "") for r in rows]


def _sections(analysis: RunAnalysis) -> list[tuple[str, list[str], list[list[str]]]]:
    saved = analysis.adaptive.saved_share if analysis.adaptive else None
    return [
        ("Coverage forecast (power law fitted to the run's curve)", FORECAST_HEAD,
         forecast_rows(analysis)),
        ("Temperatures", TEMP_HEAD, temperature_rows(analysis)),
        (f"Adaptive sampling ({_pct(saved)} of the trajectories not run)", ADAPTIVE_HEAD,
         adaptive_rows(analysis)),
    ]  # fmt: skip


def render_analysis_terminal(analysis: RunAnalysis, console: Any) -> None:
    from rich.table import Table

    for title, head, rows in _sections(analysis):
        if not rows:
            continue
        t = Table(title=title, header_style="bold")
        for i, col in enumerate(head):
            t.add_column(col, justify="left" if i == 0 else "right")
        for r in rows:
            t.add_row(*r)
        console.print(t)


def render_whatif_terminal(result: WhatIfResult, console: Any, *, limit: int = 25) -> None:
    from rich.table import Table

    t = Table(
        title=f"What if ({result.problems} graded problems; no new calls)", header_style="bold"
    )
    for i, col in enumerate(WHATIF_HEAD):
        t.add_column(col, justify="left" if i == 0 else "right")
    for r in whatif_rows(result)[:limit]:
        t.add_row(*r)
    console.print(t)
    if result.recommended is not None and result.best is not None:
        console.print(
            f"recommended (* above): {result.recommended.config.label}: resolve "
            f"{_pct(result.recommended.resolve_rate)} (best {_pct(result.best.resolve_rate)}, "
            f"margin {_pct(result.margin)}) at ${result.recommended.cost_usd:.4f} per problem "
            f"(best: ${result.best.cost_usd:.4f})",
            highlight=False,
        )
    else:
        console.print("what-if: no graded problem with trajectories (run `swebench evaluate`)")


def analysis_html(analysis: RunAnalysis) -> str:
    """The sections as HTML tables, for the report page."""
    out = []
    for title, head, rows in _sections(analysis):
        if not rows:
            continue
        ths = "".join(f"<th>{html.escape(h)}</th>" for h in head)
        trs = "".join(
            "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows
        )
        out.append(f"<h2>{html.escape(title)}</h2><table><tr>{ths}</tr>{trs}</table>")
    return "\n".join(out)
