"""One bad row or signal never stops the others (issue 11, section 4): faults that used to
abort a whole command with a traceback, through the real CLI. No Docker engine is needed
(an unreachable one is what some of these tests are about)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import CLI, FIXTURES, ROOT
from tests.swebench_fixture import fixture_row, make_fixture_repo

POLICY = FIXTURES / "policies" / "example_solver.py"


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    full.update(PYTHONPATH=str(ROOT), COLUMNS="200", **(env or {}))
    return subprocess.run(
        [CLI, *args], capture_output=True, text=True, timeout=300, env=full, cwd=ROOT
    )


def _dataset(tmp_path: Path) -> tuple[Path, dict]:
    row = fixture_row(make_fixture_repo(tmp_path / "statkit"))
    path = tmp_path / "data.jsonl"
    path.write_text(json.dumps(row) + "\n")
    return path, row


NO_DOCKER = {"DOCKER_HOST": "unix:///nonexistent/codemonkeys-test-docker.sock"}


def test_swebench_run_without_a_docker_engine_is_one_clear_message(tmp_path):
    dataset, _ = _dataset(tmp_path)
    run_dir = tmp_path / "run"
    proc = _cli("swebench", "run", "--dataset", str(dataset), "--run-dir", str(run_dir),
                "--quiet", "--model", f"scripted:{POLICY}", env=NO_DOCKER)  # fmt: skip
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "Traceback" not in out
    assert "the Docker engine is not reachable" in out
    status = json.loads((run_dir / "status.json").read_text())
    assert status["status"] == "failed" and "Docker engine" in status["error"]


def test_ensemble_without_a_docker_engine_is_one_clear_message(tmp_path):
    dataset, row = _dataset(tmp_path)
    preds = tmp_path / "a.jsonl"
    preds.write_text(
        json.dumps(
            {
                "instance_id": row["instance_id"],
                "model_name_or_path": "a",
                "model_patch": row["patch"],
            }
        )
        + "\n"  # fmt: skip
    )
    run_dir = tmp_path / "run"
    proc = _cli("ensemble", str(preds), "--dataset", str(dataset), "--run-dir", str(run_dir),
                "--quiet", "--model", f"scripted:{POLICY}", env=NO_DOCKER)  # fmt: skip
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "Traceback" not in out
    assert "the Docker engine is not reachable" in out
    assert json.loads((run_dir / "status.json").read_text())["status"] == "failed"


def _unreachable_engine_commands(tmp_path: Path) -> dict[str, list[str]]:
    dataset, _ = _dataset(tmp_path)
    repo = make_fixture_repo(tmp_path / "local").path
    model = ["--model", f"scripted:{POLICY}"]
    return {
        "doctor": ["doctor", *model],
        "solve": ["solve", "--repo", str(repo), "--issue", "mean() of [] raises", "--run-dir",
                  str(tmp_path / "solve"), *model],
        "swebench run --estimate": ["swebench", "run", "--dataset", str(dataset), "--estimate",
                                    "--run-dir", str(tmp_path / "est"), *model],
    }  # fmt: skip


def test_every_job_reports_an_unreachable_engine_the_same_way(tmp_path):
    """One client factory (sandbox/docker_client.py): each job that needs the engine says
    the same thing and the same fix, without a traceback."""
    for name, args in _unreachable_engine_commands(tmp_path).items():
        proc = _cli(*args, env=NO_DOCKER)
        out = " ".join((proc.stdout + proc.stderr).split())  # rich wraps long lines
        assert proc.returncode != 0, (name, out)
        assert "Traceback" not in out, (name, out)
        assert "the Docker engine is not reachable" in out, (name, out)
        assert "--sandbox local" in out, (name, out)


def test_grading_without_an_engine_is_the_same_sandbox_error(tmp_path, monkeypatch):
    from codemonkeys.sandbox.docker_client import EngineUnreachable
    from codemonkeys.swebench.evaluate import run_harness

    _, row = _dataset(tmp_path)
    pred = {"instance_id": row["instance_id"], "model_name_or_path": "m",
            "model_patch": row["patch"]}  # fmt: skip
    monkeypatch.setenv("DOCKER_HOST", NO_DOCKER["DOCKER_HOST"])
    with pytest.raises(EngineUnreachable, match="the Docker engine is not reachable"):
        run_harness([pred], [row], run_id="t", report_dir=tmp_path / "eval")
