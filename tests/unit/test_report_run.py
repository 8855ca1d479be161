"""build_report on a small hand-written run directory, with every figure computed by hand.

``make_synthetic_run`` is also used by the HTML and show tests. The run has:

- P1 ``demo__lib-1``: 3 trajectories; candidates A (trajectories 0 and 1, correct) and B
  (trajectory 2, wrong); votes A 2, B 1; A chosen -> resolved. Trajectory 0 wrote B first
  and A at its 2nd editing attempt. Context recall 1.0.
- P2 ``demo__lib-2``: 3 trajectories; candidates C (trajectory 0, correct) and D
  (trajectories 1 and 2, wrong); votes D 3, C 1; D chosen -> covered but not resolved.
  Context recall 0.5. A model message contains ``<script>`` (escape test).
- P3 ``demo__lib-3``: failed before generation (no candidates, no evaluation).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from codemonkeys import execution
from codemonkeys.candidates import candidate_id
from codemonkeys.generation import records
from codemonkeys.llm.base import Message
from codemonkeys.report import build_report, patches_for_grading, render_terminal
from codemonkeys.store import RunStore

HOSTILE = "<script>alert('pwned')</script></pre><b>not bold</b>"


def _patch(path: str, old: str, new: str) -> str:
    return (
        f"diff --git a/{path} b/{path}\n--- a/{path}\n+++ b/{path}\n@@ -1 +1 @@\n-{old}\n+{new}\n"
    )


PATCH_A = _patch("lib/core.py", "return a - b", "return a + b")
PATCH_B = _patch("lib/core.py", "return a - b", "return 0")
PATCH_C = _patch("lib/util.py", "x = 1", "x = 2")
PATCH_D = _patch("lib/util.py", "x = 1", "x = 3")
A, B, C, D = (candidate_id(p) for p in (PATCH_A, PATCH_B, PATCH_C, PATCH_D))


def _traj(
    index: int, edits: list[tuple[int, str]], messages: list[Message] | None = None
) -> records.TrajectoryRecord:
    """A finished trajectory whose editing calls 1..n wrote ``edits`` [(attempt, patch)]."""
    script = execution.Script(content="import sys\nsys.exit(2)\n")
    original = execution.TestRun(exit_code=2, output="issue present\n")
    versions = [
        records.EditVersion(text=f"<edit>{i}</edit>", patch=p, attempt=a)
        for i, (a, p) in enumerate(edits)
    ]
    applied = [i for i, (_, p) in enumerate(edits) if p]
    return records.TrajectoryRecord(
        index=index,
        temperature=0.5,
        state="finished",
        status="done",
        test_messages=[
            Message(role="user", content="write a test"),
            Message(role="assistant", content="<test>...</test>"),
        ],
        edit_messages=messages or [Message(role="assistant", content="<edit>...</edit>")],
        test_attempts=1,
        edit_attempts=max(a for a, _ in edits),
        tests=[records.TestVersion(script=script, original=original, phase="testing", attempt=1)],
        edits=versions,
        current_test=0,
        current_edit=applied[-1] if applied else None,
        test_approved=True,
        edit_approved=True,
        cost_usd={"tests": 0.01, "edits": 0.02},
    )


def _call(problem: str, stage: str, cost: float, seconds: float = 1.0) -> dict:
    return {
        "ts": 1.0,
        "problem": problem,
        "stage": stage,
        "model": "scripted",
        "usage": {
            "input_tokens": 1000,
            "output_tokens": 100,
            "cache_read_tokens": 500,
            "cache_write_tokens": 0,
        },
        "cost_usd": cost,
        "seconds": seconds,
        "text": "...",
    }


def make_synthetic_run(root: Path) -> Path:
    run = root / "synthetic-run"
    store = RunStore(run)
    store.write_json(
        Path("config.json"),
        {
            "models": {
                "primary": {"model": "anthropic/claude-3-5-sonnet"},
                "relevance": {"model": "openai/qwen"},
            }
        },
    )
    store.write_json(Path("status.json"), {"status": "finished"})
    fp = "f" * 16

    def problem(pid: str, issue: str) -> None:
        store.write_json(
            store.problem_dir(pid) / "problem.json", {"id": pid, "repo": "demo/lib", "issue": issue}
        )

    # P1 ------------------------------------------------------------------------------
    p1 = "demo__lib-1"
    problem(p1, "add() subtracts instead of adding")
    store.save_record(
        p1,
        "context",
        {
            "problem_id": p1,
            "token_budget": 1000,
            "packing_budget": 900,
            "packed": [{"path": "lib/core.py", "tokens": 10, "file_tokens": 10, "content": "..."}],
            "metrics": {"gold_files": 1.0, "recall": 1.0},
        },
        fp,
    )
    for i, edits in enumerate(
        [[(1, PATCH_B), (2, PATCH_A)], [(1, PATCH_A)], [(1, ""), (2, PATCH_B)]]
    ):
        store.save_record(p1, f"trajectory-{i}", _traj(i, edits), fp)
    cands1 = [
        {"id": A, "patch": PATCH_A, "sources": ["codemonkeys:traj-0", "codemonkeys:traj-1"]},
        {"id": B, "patch": PATCH_B, "sources": ["codemonkeys:traj-2"]},
    ]
    store.save_record(
        p1,
        "selection",
        {
            "problem_id": p1,
            "candidates": cands1,
            "votes": {A: 2, B: 1},
            "ranking": [
                {"id": A, "votes": 2, "cluster_size": 1, "sources": 2, "applies": True},
                {"id": B, "votes": 1, "cluster_size": 1, "sources": 1, "applies": True},
            ],
            "top_k": [A, B],
            "chosen_id": A,
            "chosen_patch": PATCH_A,
            "reason": "A adds",
            "transcript": [{"role": "assistant", "content": "I choose A"}],
        },
        fp,
    )
    # As the pipeline writes it: a save_record envelope, candidates without their patches.
    store.save_record(
        p1,
        "result",
        {
            "id": p1,
            "status": "done",
            "error": "",
            "chosen_patch": PATCH_A,
            "chosen_id": A,
            "candidates": [{k: v for k, v in c.items() if k != "patch"} for c in cands1],
            "stage_seconds": {"context": 10.0, "generation": 100.0, "selection": 20.0},
            "sandbox_seconds": {
                "context": {"open": 4.0, "reset": 0.5, "runs": 2.0, "opened": 1, "leases": 1},
                "generation": {"open": 9.0, "reset": 6.0, "runs": 80.0, "leases": 30},
                "teardown": {"close": 1.5},
            },
            "cost_usd": 0.6,
        },
        fp,
    )
    store.write_json(
        store.problem_dir(p1) / "evaluation.json",
        {"chosen": True, "candidates": {A: True, B: False}, "grading_seconds": 12.5},
    )

    # P2 ------------------------------------------------------------------------------
    p2 = "demo__lib-2"
    problem(p2, "util x should be 2")
    store.save_record(
        p2,
        "context",
        {
            "problem_id": p2,
            "token_budget": 1000,
            "packing_budget": 900,
            "packed": [{"path": "lib/util.py", "tokens": 5, "file_tokens": 5, "content": "x = 1"}],
            "metrics": {"gold_files": 2.0, "recall": 0.5},
        },
        fp,
    )
    hostile = [Message(role="assistant", content=HOSTILE)]
    for i, edits in enumerate([[(1, PATCH_C)], [(1, PATCH_D)], [(1, PATCH_D), (2, PATCH_D)]]):
        store.save_record(p2, f"trajectory-{i}", _traj(i, edits, hostile if i == 0 else None), fp)
    cands2 = [
        {"id": C, "patch": PATCH_C, "sources": ["codemonkeys:traj-0"]},
        {"id": D, "patch": PATCH_D, "sources": ["codemonkeys:traj-1", "codemonkeys:traj-2"]},
    ]
    store.save_record(
        p2,
        "selection",
        {
            "problem_id": p2,
            "candidates": cands2,
            "votes": {C: 1, D: 3},
            "ranking": [
                {"id": D, "votes": 3, "cluster_size": 1, "sources": 2, "applies": True},
                {"id": C, "votes": 1, "cluster_size": 1, "sources": 1, "applies": True},
            ],
            "chosen_id": D,
            "chosen_patch": PATCH_D,
            "matrix": {
                "tests": ["t1"],
                "candidates": [C, D],
                "cells": {
                    "original": {"t1": {"verdict": "unfixed", "output_tail": HOSTILE}},
                    C: {"t1": {"verdict": "fixed"}},
                    D: {"t1": {"verdict": "fixed"}},
                },
            },
            "transcript": [{"role": "assistant", "content": HOSTILE}],
        },
        fp,
    )
    store.write_json(
        store.problem_dir(p2) / "result.json",
        {
            "id": p2,
            "status": "done",
            "error": "",
            "chosen_patch": PATCH_D,
            "chosen_id": D,
            "candidates": cands2,
            "stage_seconds": {"context": 30.0, "generation": 200.0, "selection": 40.0},
            "cost_usd": 0.9,
        },
    )
    store.write_json(
        store.problem_dir(p2) / "evaluation.json",
        {"chosen": False, "candidates": {C: True, D: False}},
    )

    # P3 ------------------------------------------------------------------------------
    p3 = "demo__lib-3"
    problem(p3, "crashes on empty input")
    store.write_json(
        store.problem_dir(p3) / "result.json",
        {
            "id": p3,
            "status": "failed",
            "error": "Traceback ...\nRuntimeError: image demo:lib-3 missing",
            "chosen_patch": "",
            "chosen_id": None,
            "candidates": [],
            "stage_seconds": {"context": 2.0},
            "cost_usd": 0.05,
        },
    )

    calls = [
        _call(p1, "relevance", 0.10),
        _call(p1, "ranking", 0.05),
        _call(p1, "tests", 0.15),
        _call(p1, "edits", 0.25),
        _call(p1, "selection", 0.05),
        _call(p2, "relevance", 0.20),
        _call(p2, "tests", 0.20),
        _call(p2, "edits", 0.40),
        _call(p2, "selection", 0.10),
        _call(p3, "relevance", 0.05),
    ]
    for c in calls:
        store.append_jsonl(Path("calls.jsonl"), c)
    with (run / "calls.jsonl").open("a") as f:
        f.write(
            '{"problem": "demo__lib-1", "stage": "edits", "cost_u'
        )  # a line cut short by a kill
    return run


@pytest.fixture(scope="module")
def synthetic_run(tmp_path_factory) -> Path:
    return make_synthetic_run(tmp_path_factory.mktemp("report"))


def test_summary_figures_match_hand_computation(synthetic_run):
    r = build_report(synthetic_run)
    s = r.summary
    assert s.problems == 3 and s.statuses == {"done": 2, "failed": 1}
    assert (s.evaluated, s.resolved) == (3, 1)  # P3 chose nothing: trivially unresolved
    assert s.resolve_rate == pytest.approx(1 / 3)
    assert s.coverage == pytest.approx(2 / 3)  # P1 and P2 have a correct candidate
    assert s.selection_accuracy == pytest.approx(1 / 2)  # right on P1, wrong on P2
    assert s.random_pick == pytest.approx((1 / 2 + 1 / 2 + 0) / 3)
    assert s.random_pick_weighted == pytest.approx((2 / 3 + 1 / 3 + 0) / 3)
    assert s.majority_vote == pytest.approx(1 / 3)  # A on P1 right, D on P2 wrong, P3 nothing
    assert s.context_recall == pytest.approx(0.75) and s.context_recall_problems == 2
    assert s.total_cost_usd == pytest.approx(1.55)  # the cut-short line is skipped
    assert s.calls == 10
    assert r.models == {"primary": "anthropic/claude-3-5-sonnet", "relevance": "openai/qwen"}
    assert r.run_status == "finished"


def test_cost_and_time_breakdowns(synthetic_run):
    r = build_report(synthetic_run)
    assert list(r.cost_by_stage) == ["relevance", "ranking", "tests", "edits", "selection"]
    assert r.cost_by_stage["edits"].cost_usd == pytest.approx(0.65)
    assert r.cost_by_stage["relevance"].calls == 3
    assert r.cost_by_stage["relevance"].input_tokens == 3000
    assert r.seconds_by_phase == {"context": 42.0, "generation": 300.0, "selection": 60.0}
    assert r.mean_seconds_by_phase["context"] == pytest.approx(14.0)
    rows = {p.id: p for p in r.problems}
    assert rows["demo__lib-1"].cost_usd == pytest.approx(0.60)
    assert rows["demo__lib-2"].cost_by_stage == pytest.approx(
        {"relevance": 0.2, "tests": 0.2, "edits": 0.4, "selection": 0.1}
    )
    assert (
        rows["demo__lib-3"].status == "failed"
        and "image demo:lib-3 missing" in rows["demo__lib-3"].error
    )
    assert (rows["demo__lib-1"].trajectories, rows["demo__lib-1"].correct_trajectories) == (3, 2)
    assert rows["demo__lib-2"].chosen_votes == 3


def test_machine_time_per_phase_and_grading(synthetic_run):
    """Sandbox container-seconds per phase and grading seconds are summed over the
    problems that recorded them; problems from before they were recorded (P2, P3) load
    and add nothing."""
    from rich.console import Console

    r = build_report(synthetic_run)
    assert list(r.sandbox_seconds_by_phase) == ["context", "generation", "teardown"]
    gen = r.sandbox_seconds_by_phase["generation"]
    assert (gen.open, gen.reset, gen.runs, gen.leases) == (9.0, 6.0, 80.0, 30)
    assert r.sandbox_seconds_by_phase["teardown"].close == 1.5
    assert r.grading_seconds == 12.5
    rows = {p.id: p for p in r.problems}
    assert rows["demo__lib-2"].sandbox_seconds == {} and rows["demo__lib-2"].grading_seconds is None
    console = Console(record=True, width=160)
    render_terminal(r, console=console)
    text = console.export_text()
    assert "Machine time per phase" in text and "80.0s" in text and "12.5s" in text


def test_curves_over_samples_and_attempts(synthetic_run):
    r = build_report(synthetic_run)
    curves = {c.name: c for c in r.curves}
    samples = curves["Scaling over samples (parallel)"].series["coverage = pass@k (unbiased)"]
    # P1 n=3 c=2, P2 n=3 c=1, P3 n=0: k=1 (2/3+1/3+0)/3; k=2 (1 + (1-C(2,2)/C(3,2)) + 0)/3; k=3 2/3.
    assert samples == pytest.approx([1 / 3, (1 + 2 / 3) / 3, 2 / 3])
    assert samples[-1] == pytest.approx(r.summary.coverage)
    attempts = curves["Scaling over attempts (serial)"].series
    # attempt 1: P1 trajectories B, A, (nothing) -> covered, 1/3; P2 C, D, D -> covered, 1/3.
    # attempt 2: P1 A, A, B -> 2/3; P2 unchanged.  P3 counts 0 throughout.
    assert attempts["coverage (all trajectories)"] == pytest.approx([2 / 3, 2 / 3])
    assert attempts["pass@1 (one trajectory)"] == pytest.approx(
        [(1 / 3 + 1 / 3) / 3, (2 / 3 + 1 / 3) / 3]
    )


def test_patches_for_grading_include_intermediate_edits(synthetic_run):
    got = patches_for_grading(synthetic_run / "problems" / "demo__lib-1")
    assert set(got) == {A, B}
    assert got[A] == PATCH_A


def test_missing_and_corrupt_records_do_not_stop_the_report(tmp_path):
    run = make_synthetic_run(tmp_path)
    (run / "problems" / "demo__lib-2" / "evaluation.json").write_text('{"chosen": tr')  # cut short
    (run / "problems" / "demo__lib-1" / "trajectory-1.json").unlink()
    (run / "problems" / "half").mkdir()  # a problem dir with nothing in it yet
    r = build_report(run)
    assert r.summary.problems == 4
    assert r.summary.evaluated == 2  # P2 lost its evaluation, P3 is trivially unresolved
    assert r.summary.resolve_rate == pytest.approx(1 / 2)
    assert {p.id: p.status for p in r.problems}["half"] == "unknown"
    json.loads(r.model_dump_json())  # the JSON output stays valid


def test_without_evaluation_the_rates_are_unknown_not_zero(tmp_path):
    run = make_synthetic_run(tmp_path)
    for pid in ("demo__lib-1", "demo__lib-2"):
        (run / "problems" / pid / "evaluation.json").unlink()
    (run / "problems" / "demo__lib-3").rename(run / "gone")
    r = build_report(run)
    assert r.summary.evaluated == 0
    assert r.summary.resolve_rate is None and r.summary.coverage is None
    assert r.curves == []
    assert r.summary.total_cost_usd == pytest.approx(1.55)


def test_terminal_rendering_mentions_the_figures(synthetic_run):
    from rich.console import Console

    console = Console(record=True, width=160)
    render_terminal(build_report(synthetic_run), console=console)
    text = console.export_text()
    assert "Resolve rate" in text and "33.3%" in text and "66.7%" in text
    assert "demo__lib-3" in text and "image demo:lib-3 missing" in text
    assert "edits" in text and "$0.65" in text


def test_missing_run_dir_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no run directory"):
        build_report(tmp_path / "nope")


def test_labels_follow_candidates_whose_test_file_hunks_selection_stripped(tmp_path):
    """Selection strips test-file hunks (new id); trajectories still carry the original."""
    run = make_synthetic_run(tmp_path)
    pdir = run / "problems" / "demo__lib-2"
    sel = json.loads((pdir / "selection.json").read_text())
    sel["data"]["stripped"] = [{"original_id": C, "new_id": "cstripped", "removed_files": ["t.py"]}]
    (pdir / "selection.json").write_text(json.dumps(sel))
    (pdir / "evaluation.json").write_text(
        json.dumps({"chosen": False, "candidates": {"cstripped": True, D: False}})
    )
    data = json.loads((pdir / "result.json").read_text())
    data["candidates"][0]["id"] = "cstripped"
    (pdir / "result.json").write_text(json.dumps(data))
    r = build_report(run)
    row = {p.id: p for p in r.problems}["demo__lib-2"]
    assert (row.covered, row.correct_trajectories) == (True, 1)
    assert r.curves[0].series["coverage = pass@k (unbiased)"][-1] == pytest.approx(2 / 3)


def test_ungraded_intermediate_edits_leave_the_problem_out_of_the_serial_curve(tmp_path):
    run = make_synthetic_run(tmp_path)
    store = RunStore(run)
    other = _patch("lib/util.py", "x = 1", "x = 99")  # never graded
    store.save_record("demo__lib-2", "trajectory-0", _traj(0, [(1, other), (2, PATCH_C)]), "f" * 16)
    r = build_report(run)
    serial = {c.name: c for c in r.curves}["Scaling over attempts (serial)"]
    assert serial.problems == 2  # P1 and P3; P2 left out, and said so
    assert any(
        "leaves out 1 problem" in w and "evaluate RUN --intermediate" in w for w in r.warnings
    )
    assert candidate_id(other) in patches_for_grading(run / "problems" / "demo__lib-2")


def test_majority_vote_averages_ties_and_the_fused_rule_and_regressions_are_reported(tmp_path):
    """The paper's majority vote: a tie is an expectation, whatever our ranking's tie-break
    put first. The fused rule and the regression verifier's flags are graded too."""
    run = make_synthetic_run(tmp_path)
    pdir = run / "problems" / "demo__lib-1"
    sel = json.loads((pdir / "selection.json").read_text())
    sel["data"]["votes"] = {A: 2, B: 2}  # A (correct) ranked first only by its id / cluster
    sel["data"]["regression"] = {
        "candidates": {
            A: {"status": "ok", "regressions": []},
            B: {"status": "ok", "regressions": ["tests.test_core.CoreTest.test_x"]},
        }
    }
    sel["data"]["fusion"] = {
        "rule": "regressions-then-votes",
        "ranking": [
            {"id": A, "votes": 2, "kept": True, "regressions": 0},
            {"id": B, "votes": 2, "kept": False, "regressions": 1},
        ],
    }
    (pdir / "selection.json").write_text(json.dumps(sel))
    r = build_report(run)
    row = {p.id: p for p in r.problems}["demo__lib-1"]
    assert row.majority_correct == pytest.approx(0.5)
    assert row.fused_correct == 1.0 and row.chosen_regressions == 0
    assert (
        row.regression_flagged,
        row.regression_flagged_wrong,
        row.regression_flagged_correct,
    ) == (1, 1, 0)
    s = r.summary
    assert s.majority_vote == pytest.approx((0.5 + 0 + 0) / 3)
    assert s.fused_rule == 1.0 and s.fused_rule_problems == 1
    assert (s.regression_flagged, s.regression_flagged_wrong) == (1, 1)


def test_labels_use_the_ids_the_run_gave_its_candidates(tmp_path):
    """Generation and selection identify a patch by the files it produces from the base,
    an id the report cannot recompute from the text: evaluation keys its verdicts by the
    run's ids, and the report finds every trajectory's label under the same ids."""
    run = make_synthetic_run(tmp_path)
    pdir = run / "problems" / "demo__lib-1"
    by_files = {A: "cfiles0a", B: "cfiles0b"}
    for f in pdir.glob("*.json"):
        text = f.read_text()
        for text_id, files_id in by_files.items():
            text = text.replace(text_id, files_id)
        f.write_text(text)

    graded = patches_for_grading(pdir)
    assert graded == {"cfiles0a": PATCH_A, "cfiles0b": PATCH_B}  # each patch once, run's ids
    row = {p.id: p for p in build_report(run).problems}["demo__lib-1"]
    assert (row.resolved, row.covered, row.correct_trajectories) == (True, True, 2)


def test_a_record_of_another_shape_is_named_in_the_warnings(tmp_path):
    """Records are read as their writers' types: one that does not parse is left out
    with a warning naming the file and the field, and the other problems' figures stay."""
    run = make_synthetic_run(tmp_path)
    pdir = run / "problems" / "demo__lib-1"
    sel = json.loads((pdir / "selection.json").read_text())
    sel["data"]["votes"] = {A: "many"}
    (pdir / "selection.json").write_text(json.dumps(sel))
    r = build_report(run)
    assert any(
        "demo__lib-1: selection.json does not parse as SelectionRecord (votes." in w
        for w in r.warnings
    )
    rows = {p.id: p for p in r.problems}
    assert rows["demo__lib-1"].resolved is True and rows["demo__lib-1"].chosen_votes is None
    assert rows["demo__lib-2"].chosen_votes == 3
