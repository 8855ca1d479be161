"""Kill a scripted run with SIGKILL mid-way (a real subprocess) and resume it."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import FIXTURES, ROOT

SCRIPT = FIXTURES / "resume_run.py"
POLICY = FIXTURES / "policies" / "counting_echo.py"


def _run(run_dir: Path, count_file: Path, *, kill_after_calls: int | None = None) -> None:
    env = {
        **os.environ,
        "COUNT_FILE": str(count_file),
        "POLICY_SLEEP": "0.15",
        "PYTHONPATH": str(ROOT),
    }
    proc = subprocess.Popen([sys.executable, str(SCRIPT), str(run_dir), str(POLICY)], env=env)
    if kill_after_calls is None:
        assert proc.wait(timeout=120) == 0
        return
    deadline = time.monotonic() + 60
    calls = run_dir / "calls.jsonl"
    while time.monotonic() < deadline:
        if calls.exists() and len(calls.read_text().splitlines()) >= kill_after_calls:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)


def _records(run_dir: Path) -> dict:
    out = {}
    for f in sorted((run_dir / "problems" / "p1").glob("traj-*.json")):
        out[f.name] = json.loads(f.read_text())["data"]
    return out


def test_killed_run_resumes_without_repeating_completed_calls(tmp_path):
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    count_killed, count_clean = tmp_path / "count-killed", tmp_path / "count-clean"

    _run(killed, count_killed, kill_after_calls=6)
    first = len((killed / "calls.jsonl").read_text().splitlines())
    assert 6 <= first < 15, "the kill should land mid-run"
    _run(killed, count_killed)  # resume
    _run(clean, count_clean)  # reference: one uninterrupted run

    # every logged call is distinct: nothing completed was asked again
    logged = [json.loads(line) for line in (killed / "calls.jsonl").read_text().splitlines()]
    hashes = [c["request_hash"] for c in logged]
    assert len(hashes) == len(set(hashes)) == 15
    # the policy was invoked at most once more than the 15 calls (the call in flight at kill)
    invocations = count_killed.read_text().splitlines()
    assert 15 <= len(invocations) <= 15 + 3
    assert _records(killed) == _records(clean)
    # cost is recorded per call (3 $/M in, 15 $/M out -> 0.0045 per call)
    assert abs(sum(c["cost_usd"] for c in logged) - 15 * 0.0045) < 1e-9


def test_call_log_never_contains_environment_secrets(tmp_path, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-secret-value-123")
    _run(tmp_path / "r", tmp_path / "count")
    assert "sk-ant-secret-value-123" not in (tmp_path / "r" / "calls.jsonl").read_text()
