"""The report as rich tables in the terminal: summary, cost, time, curves, problems."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from codemonkeys.analysis.render import render_analysis_terminal
from codemonkeys.analysis.views import PAPER_COST_SHARES
from codemonkeys.report.format import last_line, pct, resolved_cell, secs, summary_rows, usd, yn
from codemonkeys.report.metrics import frac
from codemonkeys.report.model import Curve, Report

COST_COLUMNS = (
    "stage", "calls", "input", "output", "cache read", "cache write", "cost", "share", "paper",
    "model s",
)  # fmt: skip
"""The paper's Table 1 layout (tokens by kind per stage), with its cost shares beside ours."""


def render_terminal(report: Report, console: Console | None = None, max_problems: int = 40) -> None:
    """Print the report as rich tables (summary, cost, time, curves, problems)."""
    console = console or Console()
    console.print(_summary_table(report))
    if report.cost_by_stage:
        console.print(_cost_table(report))
    if report.seconds_by_phase:
        console.print(_time_table(report))
    if report.sandbox_seconds_by_phase or report.grading_seconds is not None:
        console.print(_machine_table(report))
    for curve in report.curves:
        console.print(_curve_table(curve))
    if report.analysis is not None:
        render_analysis_terminal(report.analysis, console)
    console.print(_problems_table(report, max_problems))
    for warning in report.warnings:
        console.print(Text("warning: ", style="yellow") + Text(warning))


def _summary_table(report: Report) -> Table:
    title = f"codemonkeys report: {report.run}" + (
        f" ({report.run_status})" if report.run_status else ""
    )
    t = Table(title=title, show_header=True, header_style="bold")
    t.add_column("metric")
    t.add_column("value", justify="right")
    t.add_column("", style="dim")
    for name, value, note in summary_rows(report):
        t.add_row(name, value, note)
    return t


def _cost_table(report: Report) -> Table:
    total = report.summary.total_cost_usd or 0.0
    c = Table(title="Cost per stage (paper: CodeMonkeys' shares on SWE-bench Verified)")
    for col in COST_COLUMNS:
        c.add_column(col, justify="left" if col == "stage" else "right", no_wrap=True)
    for stage, sc in report.cost_by_stage.items():
        c.add_row(
            stage,
            str(sc.calls),
            f"{sc.input_tokens:,}",
            f"{sc.output_tokens:,}",
            f"{sc.cache_read_tokens:,}",
            f"{sc.cache_write_tokens:,}",
            usd(sc.cost_usd),
            pct(frac(sc.cost_usd, total)),
            pct(PAPER_COST_SHARES.get(stage)),
            secs(sc.model_seconds),
        )
    return c


def _time_table(report: Report) -> Table:
    w = Table(title="Wall time per phase", header_style="bold")
    for col in ("phase", "total", "mean per problem"):
        w.add_column(col, justify="left" if col == "phase" else "right")
    for phase, total_s in report.seconds_by_phase.items():
        w.add_row(phase, secs(total_s), secs(report.mean_seconds_by_phase.get(phase)))
    return w


MACHINE_COLUMNS = ("phase", "wall", "sandbox open", "reset", "runs", "close", "grading")


def _machine_table(report: Report) -> Table:
    """Machine time per phase: the sandboxes' container-seconds (parallel ones add up) and
    the harness's grading."""
    m = Table(title="Machine time per phase (container-seconds)", header_style="bold")
    for col in MACHINE_COLUMNS:
        m.add_column(col, justify="left" if col == "phase" else "right")
    for phase, sb in report.sandbox_seconds_by_phase.items():
        wall = report.seconds_by_phase.get(phase)
        m.add_row(
            phase, secs(wall), secs(sb.open), secs(sb.reset), secs(sb.runs), secs(sb.close), "-"
        )
    if report.grading_seconds is not None:
        m.add_row(
            "grading (swebench evaluate)", "-", "-", "-", "-", "-", secs(report.grading_seconds)
        )
    return m


def _curve_table(curve: Curve) -> Table:
    ct = Table(title=f"{curve.name} ({curve.problems} problems)", header_style="bold")
    ct.add_column(curve.x_label, justify="right")
    for name in curve.series:
        ct.add_column(name, justify="right")
    length = max(len(v) for v in curve.series.values())
    for i in range(length):
        ct.add_row(str(i + 1), *(pct(v[i]) if i < len(v) else "-" for v in curve.series.values()))
    return ct


def _problems_table(report: Report, max_problems: int) -> Table:
    p = Table(title="Problems", header_style="bold")
    # ids are never cut (SWE-bench ids share long prefixes: a cut id names no problem);
    # the error column gives way instead
    id_width = max((len(row.id) for row in report.problems[:max_problems]), default=7)
    p.add_column("problem", no_wrap=True, min_width=id_width)
    for col in ("status", "resolved", "covered", "cands (ok)", "regr.", "cost"):
        p.add_column(col, justify="right" if col in ("cands (ok)", "regr.", "cost") else "left")
    p.add_column("error", overflow="fold", ratio=1)
    for row in report.problems[:max_problems]:
        correct = "-" if row.correct_candidates is None else row.correct_candidates
        p.add_row(
            Text(row.id),
            Text(row.status),
            resolved_cell(row),
            yn(row.covered),
            f"{row.candidates} ({correct})",
            "-" if row.chosen_regressions is None else str(row.chosen_regressions),
            usd(row.cost_usd),
            Text(last_line(row.error or "")[:80]),
        )
    if len(report.problems) > max_problems:
        p.caption = f"{len(report.problems) - max_problems} more in the JSON / HTML report"
    return p
