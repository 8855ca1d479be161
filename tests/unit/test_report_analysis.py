"""The report's analysis views on the hand-written run of ``test_report_run`` (figures
computed by hand there and here): forecasts, what-if, adaptive decisions, the Table-1 cost
table; the temperature view on crafted outcomes; ``codemonkeys report --what-if``."""

from __future__ import annotations

import json
import os
import subprocess

import pytest
from rich.console import Console

from codemonkeys.analysis.runview import (
    adaptive_view,
    coverage_forecasts,
    problem_outcomes,
    temperature_view,
)
from codemonkeys.analysis.whatif import (
    ProblemOutcome,
    TrajectoryOutcome,
    WhatIfConfig,
    evaluate_config,
)
from codemonkeys.generation.records import AdaptiveRecord, StopDecision, WaveEvidence
from codemonkeys.report import build_report, render_html, render_terminal
from codemonkeys.store import RunStore
from tests.conftest import CLI
from tests.unit.test_report_run import A, B, C, D, make_synthetic_run


@pytest.fixture()
def run(tmp_path):
    return make_synthetic_run(tmp_path)


def test_outcomes_follow_each_trajectory_attempt_by_attempt(run):
    problems, unlabelled = problem_outcomes(run)
    assert unlabelled == 1  # demo__lib-3 failed before generation: no evaluation
    p1, p2 = problems
    assert [t.candidates for t in p1.trajectories] == [[B, A], [A], [None, B]]
    assert [t.correct for t in p1.trajectories] == [[False, True], [True], [False, False]]
    assert [t.candidates for t in p2.trajectories] == [[C], [D], [D, D]]
    assert p2.votes == {C: 1, D: 3}
    assert p1.fixed_cost_usd == pytest.approx(0.20)  # relevance + ranking + selection


def test_forecasts_report_the_measured_budget_and_2x_4x(run):
    problems, _ = problem_outcomes(run)
    samples, attempts = coverage_forecasts(problems)
    # pass@k: k=1 (2/3 + 1/3) / 2 = 0.5, k=2 (1 + 2/3) / 2, k=3 1.0
    assert (samples.axis, samples.budget, samples.measured) == ("samples", 3, 1.0)
    assert [f.k for f in samples.forecasts] == [6, 12]
    assert all(f.coverage > 5 / 6 for f in samples.forecasts)
    # every problem is covered after one attempt already: flat at 1
    assert (attempts.axis, attempts.budget, attempts.measured) == ("attempts", 2, 1.0)
    assert [f.coverage for f in attempts.forecasts] == [1.0, 1.0]


def test_what_if_on_the_run_by_hand(run):
    problems, _ = problem_outcomes(run)
    full = evaluate_config(problems, WhatIfConfig(samples=3, attempts=2, temperatures=[0.5]))
    assert full.coverage == pytest.approx(1.0)
    assert full.resolve_rate == pytest.approx(0.5)  # P1: A wins the vote; P2: D (wrong) wins
    assert full.cost_usd == pytest.approx((0.29 + 0.39) / 2)
    one = evaluate_config(problems, WhatIfConfig(samples=1, attempts=2, temperatures=[0.5]))
    assert one.coverage == pytest.approx(0.5)
    assert one.resolve_rate == pytest.approx((2 / 3 + 1 / 3) / 2)


def test_temperature_view_names_what_only_one_temperature_solved():
    def traj(temp, ok):
        return TrajectoryOutcome(temperature=temp, candidates=["x" if ok else "y"], correct=[ok])

    problems = [
        ProblemOutcome(id="both", trajectories=[traj(0.2, True), traj(0.8, True)]),
        ProblemOutcome(id="cold", trajectories=[traj(0.2, True), traj(0.8, False)]),
        ProblemOutcome(id="hot", trajectories=[traj(0.2, False), traj(0.8, True)]),
        ProblemOutcome(id="none", trajectories=[traj(0.2, False), traj(0.8, False)]),
    ]
    view = temperature_view(problems)
    assert [(r.temperature, r.coverage, r.only_here) for r in view.rows] == [
        (0.2, 0.5, ["cold"]),
        (0.8, 0.5, ["hot"]),
    ]
    assert view.union == 0.75
    assert temperature_view(problems[:1] and [problems[0].model_copy(update={
        "trajectories": [traj(0.2, True)]})]) is None  # fmt: skip


def _decision(wave, action, started, reason):
    ev = WaveEvidence(started=started, limit=9, with_patch=started)
    return StopDecision(wave=wave, action=action, reason=reason, evidence=ev)


def test_adaptive_decisions_and_the_cost_table_reach_the_report(run):
    store = RunStore(run)
    decisions = [_decision(0, "continue", 3, "disagreement"), _decision(1, "stop", 6, "agreement")]
    record = AdaptiveRecord(wave_size=3, limit=9, ladder=[0.5], decisions=decisions)
    store.save_record("demo__lib-1", "adaptive", record, "f" * 16)
    view = adaptive_view(run)
    [p] = view.problems
    assert (p.id, p.trajectories, p.limit, p.waves, p.final_action) == (
        "demo__lib-1", 6, 9, 2, "stop",
    )  # fmt: skip
    assert view.saved_share == pytest.approx(1 / 3)

    report = build_report(run)
    assert report.analysis.adaptive.problems[0].id == "demo__lib-1"
    page = render_html(report)
    assert "Adaptive sampling" in page and "Coverage forecast" in page
    # the cost table in the paper's Table 1 layout, the paper's shares beside ours
    assert "paper share" in page and "59.6%" in page and "cache write" in page
    console = Console(width=200, record=True)
    render_terminal(report, console)
    text = console.export_text()
    edits = next(line for line in text.splitlines() if line.startswith("│ edits"))
    total = sum(c.cost_usd for c in report.cost_by_stage.values())
    share = report.cost_by_stage["edits"].cost_usd / total
    assert f"{100 * share:.1f}%" in edits and "59.6%" in edits


def test_report_what_if_through_the_cli(run):
    proc = subprocess.run(
        [CLI, "report", str(run), "--what-if", "--margin", "0.2"],
        capture_output=True, text=True, timeout=120, env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "What if (2 graded problems" in out and "recommended" in out
    assert "Coverage forecast" in out and "paper" in out
    proc = subprocess.run(
        [CLI, "report", str(run), "--what-if", "--json"], capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    data = json.loads(proc.stdout)
    rows = data["what_if"]["rows"]
    best = data["what_if"]["best"]
    assert best["resolve_rate"] == max(r["resolve_rate"] for r in rows)
    assert data["what_if"]["recommended"]["cost_usd"] <= best["cost_usd"]
    assert data["report"]["analysis"]["forecasts"][0]["axis"] == "samples"
