"""What the user is told about grading is true: a problem the harness never graded is
"ungraded" (not "resolved: no") in evaluation.json, the report (terminal, JSON, HTML) and
``show``; it is left out of the resolve rate's denominator and said so; a rerun of
``swebench evaluate`` grades it; each distinct patch is graded once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from codemonkeys.candidates import candidate_id
from codemonkeys.report import build_report, render_html, render_terminal
from codemonkeys.show import render_show
from codemonkeys.store import RunStore
from codemonkeys.swebench import evaluate
from codemonkeys.swebench.run import evaluate_run
from tests.unit.test_report_run import PATCH_A, PATCH_B, A, make_synthetic_run

UNGRADED = {
    "verdict": "ungraded",
    "chosen": None,
    "chosen_status": "image_missing",
    "reason": "image swebench/sweb.eval.x86_64.demo_1776_lib-1:latest is not on the local Docker engine",
    "candidates": {},
}


def test_an_ungraded_problem_is_shown_as_ungraded_and_left_out_of_the_resolve_rate(tmp_path):
    run = make_synthetic_run(tmp_path)
    (run / "problems" / "demo__lib-1" / "evaluation.json").write_text(json.dumps(UNGRADED))
    r = build_report(run)
    row = {p.id: p for p in r.problems}["demo__lib-1"]
    assert row.verdict == "ungraded" and row.resolved is None and not row.evaluated
    assert "not on the local Docker engine" in row.ungraded_reason
    # P2 graded unresolved, P3 trivially unresolved; P1 is in no denominator
    assert (r.summary.evaluated, r.summary.resolved, r.summary.ungraded) == (2, 0, 1)
    assert r.summary.resolve_rate == 0.0
    assert any("never graded" in w and "demo__lib-1" in w for w in r.warnings)
    assert json.loads(r.model_dump_json())["problems"][0]["verdict"] == "ungraded"

    from rich.console import Console

    console = Console(record=True, width=200)
    render_terminal(r, console=console)
    text = console.export_text()
    line = next(ln for ln in text.splitlines() if "demo__lib-1" in ln and "│" in ln)
    assert "ungraded" in line and " no " not in line
    assert "1 ungraded, not counted" in text
    assert ">ungraded<" in render_html(r)

    page = render_show(run, "demo__lib-1")
    assert "ungraded" in page and "not resolved" not in page
    assert "not on the local Docker engine" in page


def _run_with_one_problem(tmp_path: Path, image: str = "") -> Path:
    """A run directory as `swebench run` leaves it: dataset row, result with the chosen
    patch A, selection with candidates A and B."""
    run = tmp_path / "run"
    store = RunStore(run)
    pid = "demo__lib-1"
    row = {
        "instance_id": pid,
        "repo": "demo/lib",
        "eval_script": "#!/bin/bash\n",
        "log_parser": "parse_log_pytest",
        "eval_type": "pass_and_fail",
        "FAIL_TO_PASS": "[]",
        "PASS_TO_PASS": "[]",
        "test_patch": "diff --git a/t.py b/t.py\n",
        "image": image,
    }
    (run / "dataset.jsonl").write_text(json.dumps(row) + "\n")
    store.write_json(store.problem_dir(pid) / "problem.json", {"id": pid, "issue": "x"})
    store.save_record(
        pid,
        "result",
        _Data(
            {
                "id": pid,
                "status": "done",
                "chosen_id": A,
                "chosen_patch": PATCH_A,
                "candidates": [{"id": A}, {"id": candidate_id(PATCH_B)}],
            }
        ),
        "f",
    )
    store.save_record(
        pid,
        "selection",
        _Data(
            {
                "candidates": [
                    {"id": A, "patch": PATCH_A},
                    {"id": candidate_id(PATCH_B), "patch": PATCH_B},
                ]
            }
        ),
        "f",
    )
    return run


class _Data(dict):
    """A plain dict that RunStore.save_record accepts (it dumps pydantic models)."""

    def model_dump(self, **_: object) -> dict:
        return dict(self)


@pytest.fixture
def harness(monkeypatch):
    """run_harness_runs at the harness boundary: records what was sent; the image of an
    instance is missing while ``missing`` holds it; patch A resolves, others do not."""
    state = {"sent": [], "missing": set()}

    def fake(preds, rows, *, run_id, **kw):
        run = evaluate.EvaluationRun(run_id=run_id)
        for p in preds:
            iid = p["instance_id"]
            state["sent"].append((run_id, iid, p["model_patch"]))
            if iid in state["missing"]:
                run.resolved[iid] = None
                run.status[iid] = "image_missing"
                run.reasons[iid] = f"image of {iid} is not on the local Docker engine"
            else:
                run.resolved[iid] = p["model_patch"] == PATCH_A
                run.status[iid] = "resolved" if run.resolved[iid] else "unresolved"
        return run

    def fake_runs(runs, rows, **kw):
        return {run_id: fake(preds, rows, run_id=run_id) for run_id, preds in runs.items()}

    monkeypatch.setattr(evaluate, "run_harness_runs", fake_runs)
    monkeypatch.setattr(evaluate, "harness_available", lambda: True)
    return state


def test_each_distinct_patch_is_graded_once_the_chosen_one_included(tmp_path, harness):
    run = _run_with_one_problem(tmp_path)
    summary = evaluate_run(run)
    patches = [patch for _, _, patch in harness["sent"]]
    assert sorted(patches) == sorted([PATCH_A, PATCH_B])  # A is chosen *and* a candidate
    assert summary == {"problems": 1, "graded": 1, "resolved": 1, "ungraded": 0, "covered": 1}
    evaluation = json.loads((run / "problems" / "demo__lib-1" / "evaluation.json").read_text())
    assert evaluation["verdict"] == "resolved" and evaluation["chosen"] is True
    assert evaluation["candidates"] == {A: True, candidate_id(PATCH_B): False}


def test_an_ungraded_problem_is_recorded_as_such_and_retried_by_the_next_evaluate(
    tmp_path, harness
):
    run = _run_with_one_problem(tmp_path)
    harness["missing"].add("demo__lib-1")
    summary = evaluate_run(run)
    assert summary["ungraded"] == 1 and summary["graded"] == 0 and summary["resolved"] == 0
    evaluation = json.loads((run / "problems" / "demo__lib-1" / "evaluation.json").read_text())
    assert evaluation["verdict"] == "ungraded" and evaluation["chosen"] is None
    assert "not on the local Docker engine" in evaluation["reason"]
    assert evaluation["candidates"] == {A: None, candidate_id(PATCH_B): None}
    assert build_report(run).summary.resolve_rate is None  # nothing graded: unknown, not 0

    harness["missing"].clear()  # the image is back
    harness["sent"].clear()
    summary = evaluate_run(run)
    assert summary["graded"] == 1 and summary["resolved"] == 1 and summary["ungraded"] == 0
    assert len(harness["sent"]) == 2
    evaluation = json.loads((run / "problems" / "demo__lib-1" / "evaluation.json").read_text())
    assert evaluation["verdict"] == "resolved" and evaluation["chosen"] is True

    harness["sent"].clear()  # graded verdicts are kept: a third evaluate sends nothing
    assert evaluate_run(run)["resolved"] == 1
    assert harness["sent"] == []


def test_a_failed_harness_run_leaves_its_patches_ungraded_not_unresolved(
    tmp_path, harness, monkeypatch
):
    run = _run_with_one_problem(tmp_path)

    def failing(runs, rows, **kw):
        raise evaluate.HarnessFailed(
            f"swebench harness ({len(runs)} runs) exited 1 without grading"
        )

    monkeypatch.setattr(evaluate, "run_harness_runs", failing)
    summary = evaluate_run(run)
    assert summary["ungraded"] == 1 and summary["graded"] == 0
    evaluation = json.loads((run / "problems" / "demo__lib-1" / "evaluation.json").read_text())
    assert evaluation["chosen"] is None and evaluation["chosen_status"] == "harness_failed"


def test_the_problem_table_shows_whole_ids_on_a_narrow_terminal(tmp_path):
    """Ids sharing a long prefix used to be cut to the same "django__django-1…"."""
    from rich.console import Console

    run = tmp_path / "run"
    store = RunStore(run)
    ids = [f"django__django-1{n}" for n in ("1099", "1133", "5957")]
    for pid in ids:
        store.write_json(store.problem_dir(pid) / "problem.json", {"id": pid})
        store.save_record(
            pid,
            "result",
            _Data({"id": pid, "status": "failed", "error": "RuntimeError: " + "x" * 200}),
            "f",
        )
    console = Console(record=True, width=80)
    render_terminal(build_report(run), console=console)
    text = console.export_text()
    for pid in ids:
        assert pid in text


# --------------------------------------------------------------------------- the CLI


def test_evaluate_on_a_missing_run_directory_fails_and_creates_nothing(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from codemonkeys.cli import app

    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["swebench", "evaluate", "runs/typo"])
    assert result.exit_code != 0
    assert "no run directory at runs/typo" in result.output
    assert not (tmp_path / "runs").exists()


def test_evaluate_exits_non_zero_while_a_problem_is_ungraded(tmp_path, harness):
    from typer.testing import CliRunner

    from codemonkeys.cli import app

    run = _run_with_one_problem(tmp_path)
    harness["missing"].add("demo__lib-1")
    result = CliRunner().invoke(app, ["swebench", "evaluate", str(run)])
    assert result.exit_code == 1
    assert "1 problem(s) ungraded" in result.output and "rerun" in result.output
    harness["missing"].clear()
    result = CliRunner().invoke(app, ["swebench", "evaluate", str(run)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.strip().splitlines()[-1])["resolved"] == 1


def test_swebench_run_where_every_problem_failed_exits_non_zero(tmp_path, monkeypatch):
    """Two rows that cannot become problems: both fail, and the exit status says so."""
    from typer.testing import CliRunner

    from codemonkeys.cli import app
    from tests.conftest import FIXTURES

    monkeypatch.chdir(tmp_path)
    rows = [{"instance_id": f"octo__widget-{i}", "repo": "octo/widget"} for i in (1, 2)]
    (tmp_path / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    policy = FIXTURES / "policies" / "example_solver.py"
    result = CliRunner().invoke(
        app,
        ["swebench", "run", "-d", "data.jsonl", "-q", "--model", f"scripted:{policy}"],
    )
    assert result.exit_code == 1, result.output
    assert "finished: 0 of 2 problem(s) done (failed 2), errors 2" in result.output
    status = json.loads((tmp_path / "runs" / "swebench-data" / "status.json").read_text())
    assert status["status"] == "finished" and status["by_status"] == {"failed": 2}


def test_quiet_logging_keeps_warnings_on_one_line_and_drops_info(capsys):
    import logging

    from codemonkeys.cli import _setup_logging

    _setup_logging(verbose=False, quiet=True)
    try:
        log = logging.getLogger("codemonkeys.test")
        log.info("running the SWE-bench harness: python -m swebench.harness.run_evaluation")
        log.warning(
            "problem %s failed: %s", "octo__widget-1", "Traceback\n  File x\nValueError: bad"
        )
        err = capsys.readouterr().err
    finally:
        _setup_logging(verbose=False)
    assert "running the SWE-bench harness" not in err
    assert err.count("\n") == 1
    assert "octo__widget-1" in err and "ValueError: bad" in err


def test_a_changed_dataset_row_grades_every_patch_again(tmp_path, harness):
    run = _run_with_one_problem(tmp_path)
    evaluate_run(run)
    harness["sent"].clear()
    row = json.loads((run / "dataset.jsonl").read_text())
    row["PASS_TO_PASS"] = '["test_new"]'
    (run / "dataset.jsonl").write_text(json.dumps(row) + "\n")
    evaluate_run(run)
    assert len(harness["sent"]) == 2  # the old verdicts were for another row


def test_candidates_recorded_under_an_older_identity_keep_their_labels(tmp_path, harness):
    """Selection wrote ids with the identity function of its day; the labels follow."""
    run = _run_with_one_problem(tmp_path)
    pdir = run / "problems" / "demo__lib-1"
    sel = json.loads((pdir / "selection.json").read_text())
    sel["data"]["candidates"][1]["id"] = "cold-id"
    (pdir / "selection.json").write_text(json.dumps(sel))
    evaluate_run(run)
    evaluation = json.loads((pdir / "evaluation.json").read_text())
    assert evaluation["candidates"]["cold-id"] is False
    # one patch, one identity (the run's): graded once, not again under its text id
    assert candidate_id(PATCH_B) not in evaluation["candidates"]
    assert [p for _, _, p in harness["sent"]].count(PATCH_B) == 1
