"""Reports on a run directory: metrics, a terminal table, JSON and one self-contained HTML page.

Layers, each usable alone:

- ``metrics``: pure functions over plain values (resolve rate, coverage, selection
  accuracy, random pick, majority vote, pass@k and its curves).
- ``model``: the typed ``Report`` (``report --json`` is its ``model_dump_json``).
- ``loading``: ``build_report(run_dir)`` reads the records the pipeline writes (named by
  ``codemonkeys.records``) and never raises on a missing or partial record;
  ``summary`` computes the run-wide figures from the loaded problems.
- rendering: ``terminal`` (rich), ``html`` (+ ``svg`` charts), ``show_html`` (one problem).

The patches of a run (trajectories, candidate ids, what to grade) are read by
``codemonkeys.run_patches``, which jobs use without importing any presentation.
"""

from codemonkeys.report.format import last_line, pct, secs, summary_rows, usd
from codemonkeys.report.html import BASE_CSS, render_html, write_report
from codemonkeys.report.loading import build_report
from codemonkeys.report.metrics import (
    attempt_curves,
    coverage,
    majority_vote_expectation,
    mean,
    pass_at_k,
    pass_at_k_curve,
    random_pick_expectation,
    resolve_rate,
    selection_accuracy,
    weighted_random_pick_expectation,
)
from codemonkeys.report.model import Curve, ProblemRow, Report, StageCost, Summary
from codemonkeys.report.svg import svg_bar_chart, svg_line_chart
from codemonkeys.report.terminal import render_terminal
from codemonkeys.run_patches import patches_for_grading

__all__ = [
    "BASE_CSS",
    "Curve",
    "ProblemRow",
    "Report",
    "StageCost",
    "Summary",
    "attempt_curves",
    "build_report",
    "coverage",
    "last_line",
    "majority_vote_expectation",
    "mean",
    "pass_at_k",
    "pass_at_k_curve",
    "patches_for_grading",
    "pct",
    "random_pick_expectation",
    "render_html",
    "render_terminal",
    "resolve_rate",
    "secs",
    "selection_accuracy",
    "summary_rows",
    "svg_bar_chart",
    "svg_line_chart",
    "usd",
    "weighted_random_pick_expectation",
    "write_report",
]
