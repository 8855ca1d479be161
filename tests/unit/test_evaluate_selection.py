"""What `swebench evaluate` grades: by default the chosen patch and each distinct final
candidate; every intermediate edit only with --intermediate (~10^4 harness runs for
Verified otherwise). The harness itself is replaced here by a recorder of what it is asked
to grade (the grading is tested against the real harness in the integration tests)."""

from __future__ import annotations

import json

import pytest

from codemonkeys.candidates import candidate_id
from codemonkeys.store import RunStore
from codemonkeys.swebench import evaluate as harness
from codemonkeys.swebench.run import evaluate_run
from tests.unit.test_report_run import PATCH_A, PATCH_B, _patch, _traj, make_synthetic_run

PATCH_E = _patch("lib/core.py", "return a - b", "return b - a")  # an intermediate edit only


@pytest.fixture
def graded(tmp_path, monkeypatch):
    run = make_synthetic_run(tmp_path)
    store = RunStore(run)
    # a fourth trajectory that tried E, then settled on A
    store.save_record(
        "demo__lib-1", "trajectory-3", _traj(3, [(1, PATCH_E), (2, PATCH_A)]), "f" * 16
    )
    rows = [{"instance_id": pid, "repo": "demo/lib"} for pid in store.problem_ids()]
    (run / "dataset.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    asked: dict[str, set[str]] = {}

    def fake_grade(cands, rows, **kw):
        for pid, pairs in cands.items():
            asked.setdefault(pid, set()).update(cid for cid, _ in pairs)
        unresolved = harness.Verdict(resolved=False, status="unresolved")
        return {pid: {cid: unresolved for cid, _ in pairs} for pid, pairs in cands.items()}

    monkeypatch.setattr(harness, "grade_candidates", fake_grade)
    return run, asked


def test_evaluate_grades_final_candidates_not_intermediate_edits_by_default(graded):
    run, asked = graded
    evaluate_run(run)
    assert asked["demo__lib-1"] == {candidate_id(PATCH_A), candidate_id(PATCH_B)}


def test_intermediate_edits_are_graded_on_request(graded):
    run, asked = graded
    evaluate_run(run, intermediate=True)
    assert candidate_id(PATCH_E) in asked["demo__lib-1"]
