"""Reading the official harness's per-instance verdicts (report.json, test_output.txt,
run_instance.log) as it leaves them on disk: a lost test output is no verdict."""

from __future__ import annotations

import json
from pathlib import Path

from codemonkeys.swebench.harness_io import (
    drop_stale_verdict,
    eval_output_problem,
    instance_dir,
    instance_verdict,
)

PRED = {"instance_id": "astropy__astropy-12907", "model_name_or_path": "cm/a1", "model_patch": "x"}
TRACED_START = "+ : '>>>>> Start Test Output'\n"


def _graded(log_dir: Path, resolved: bool, test_output: str | None) -> Path:
    d = instance_dir(log_dir, PRED)
    d.mkdir(parents=True)
    report = {PRED["instance_id"]: {"resolved": resolved, "patch_successfully_applied": False}}
    (d / "report.json").write_text(json.dumps(report))
    if test_output is not None:
        (d / "test_output.txt").write_text(test_output)
    return d


def test_a_graded_run_keeps_its_verdict(tmp_path):
    _graded(tmp_path / "ok", True, TRACED_START + "PASSED t\n")
    _graded(tmp_path / "bad", False, TRACED_START + "FAILED t\n")
    assert instance_verdict(tmp_path / "ok", PRED) is True
    assert instance_verdict(tmp_path / "bad", PRED) is False


def test_an_unresolved_verdict_on_a_lost_test_output_is_no_verdict(tmp_path):
    """The harness grades an empty output 'unresolved'; the tests never reported, so
    the answer is unknown (graded again), not a failed patch."""
    d = _graded(tmp_path / "lost", False, "")
    assert "lost" in (eval_output_problem(d) or "")
    assert instance_verdict(tmp_path / "lost", PRED) is None
    died = _graded(tmp_path / "died", False, "+ source /opt/miniconda3/bin/activate\nerror\n")
    assert "before its tests started" in (eval_output_problem(died) or "")
    assert instance_verdict(tmp_path / "died", PRED) is None
    # the harness would reuse these reports: the next evaluation grades them again
    graded = _graded(tmp_path / "ok", False, TRACED_START + "FAILED t\n")
    for log_dir in ("lost", "died", "ok"):
        drop_stale_verdict(tmp_path / log_dir, PRED)
    assert not d.exists() and not died.exists() and graded.exists()


def test_a_patch_that_did_not_apply_stays_unresolved(tmp_path):
    d = instance_dir(tmp_path, PRED)
    d.mkdir(parents=True)
    (d / "run_instance.log").write_text(">>>>> Patch Apply Failed:\npatch: **** malformed\n")
    assert instance_verdict(tmp_path, PRED) is False
    assert instance_verdict(tmp_path / "elsewhere", PRED) is None
