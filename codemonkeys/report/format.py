"""Number and cell formatting shared by the terminal and HTML renderings."""

from __future__ import annotations

from codemonkeys.report.model import ProblemRow, Report


def pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.1f}%"


def usd(v: float | None) -> str:
    return "-" if v is None else f"${v:,.2f}" if abs(v) >= 0.01 or v == 0 else f"${v:.4f}"


def secs(v: float | None) -> str:
    if v is None:
        return "-"
    if v < 120:
        return f"{v:.1f}s"
    if v < 7200:
        return f"{v / 60:.1f}m"
    return f"{v / 3600:.1f}h"


def summary_rows(report: Report) -> list[tuple[str, str, str]]:
    """(metric, value, explanation) shared by the terminal and HTML renderings."""
    s = report.summary
    return [
        (
            "Resolve rate",
            pct(s.resolve_rate),
            f"{s.resolved} of {s.evaluated} evaluated problems"
            + (f"; {s.ungraded} ungraded, not counted" if s.ungraded else ""),
        ),
        ("Coverage", pct(s.coverage), "some candidate correct (oracle selection)"),
        ("Selection accuracy", pct(s.selection_accuracy), "chosen correct / covered"),
        ("Random pick", pct(s.random_pick), "expected, one distinct candidate uniformly"),
        (
            "Random trajectory",
            pct(s.random_pick_weighted),
            "expected, weighted by trajectory count",
        ),
        (
            "Majority vote",
            pct(s.majority_vote),
            f"top-voted candidate, ties averaged (the paper's metric), "
            f"{s.majority_vote_problems} problems",
        ),
        (
            "Fused rule",
            pct(s.fused_rule),
            f"regressions then votes, no selector, ties averaged, {s.fused_rule_problems} problems",
        ),
        (
            "Regression verifier",
            str(s.regression_flagged),
            f"graded candidates breaking an existing test: {s.regression_flagged_wrong} wrong "
            f"(true positives), {s.regression_flagged_correct} correct (false positives)",
        ),
        (
            "Context recall",
            pct(s.context_recall),
            f"gold files in packed context, {s.context_recall_problems} problems",
        ),
        ("Total cost", usd(s.total_cost_usd), f"{s.calls} model calls"),
        ("Cost per problem", usd(s.cost_per_problem_usd), f"{s.problems} problems"),
    ]


def last_line(text: str) -> str:
    """The last non-blank line: for a traceback, the exception and its message."""
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else ""


def yn(v: bool | None) -> str:
    return "-" if v is None else ("yes" if v else "no")


def resolved_cell(row: ProblemRow) -> str:
    """yes / no / ungraded (never graded: not a "no") / - (not evaluated)."""
    return "ungraded" if row.verdict == "ungraded" else yn(row.resolved)
