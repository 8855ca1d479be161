"""The records registry: every per-problem record named once, files as documented, and a
failed result saved with the run's real fingerprint (no made-up one forcing a recompute)."""

from __future__ import annotations

import logging
import re
from pathlib import Path

from codemonkeys.config import Config
from codemonkeys.pipeline import load_result, open_run
from codemonkeys.record_types import record_type
from codemonkeys.records import Record, trajectory_name
from codemonkeys.swebench.jobs import problems_from_rows

ARCHITECTURE = Path(__file__).resolve().parents[2] / "docs" / "architecture.md"


def test_every_record_file_is_the_documented_one():
    """Old runs must keep loading: each registry entry's file is in docs/architecture.md."""
    documented = set(re.findall(r"problems/<id>/([\w.<>-]+\.json)", ARCHITECTURE.read_text()))
    for record in Record:
        if record in (Record.TRAJECTORY, Record.ENSEMBLE_TESTS):
            continue
        assert record.file in documented, record
    assert f"{trajectory_name(3)}.json" == "trajectory-3.json"
    assert f"{trajectory_name(0, Record.ENSEMBLE_TESTS)}.json" == "ensemble-tests-0.json"
    assert record_type(Record.RESULT).__name__ == "ProblemResult"
    assert record_type(Record.EVALUATION) is None


def test_a_row_that_is_not_a_problem_is_a_retryable_result_not_a_stale_record(tmp_path, caplog):
    rt = open_run(tmp_path / "run", Config())
    try:
        failed: list = []
        rows = [{"instance_id": "demo__lib-1"}]  # no repo, no problem statement
        assert list(problems_from_rows(rt, rows, failed)) == []
        with caplog.at_level(logging.WARNING):
            again = load_result(rt, "demo__lib-1")
    finally:
        rt.close()
    assert again is not None and again.status == "failed" and not again.finished
    assert "different config" not in caplog.text
    assert not (tmp_path / "run" / "problems" / "demo__lib-1" / "stale").exists()


def test_no_record_name_is_a_string_literal():
    """Writers and readers name records through the registry, never by a literal."""
    package = Path(__file__).resolve().parents[2] / "codemonkeys"
    literal = re.compile(
        r"(save_record|load_record|record_data|read_record_data)\([^,()]+,\s*f?[\"']"
    )
    offenders = [
        f"{path.relative_to(package)}:{n}"
        for path in package.rglob("*.py")
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if literal.search(line)
    ]
    assert offenders == []
