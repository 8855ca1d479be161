"""Adaptive sampling through the real CLI (``codemonkeys solve``), scripted model, the local
sandbox (no Docker needed): an easy problem stops after the first wave, a problem whose
samples disagree goes on to ``generation.samples``, and a rerun replays the recorded
decisions without a new model call."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

from tests.conftest import CLI, FIXTURES, ROOT, make_git_repo

POLICY = FIXTURES / "policies" / "example_solver.py"
ADAPTIVE = [
    "--sandbox", "local",
    "--set", "generation.adaptive=true",
    "--set", "generation.adaptive_wave=3",
    "--set", "generation.samples=9",
    "--set", "generation.test_attempts=3",
    "--set", "generation.edit_attempts=3",
    "--set", "context.rankings=1",
    "--set", "sandbox.script_timeout_s=30",
    "--set", "selection.regression=false",
]  # fmt: skip


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env.update(PYTHONPATH=str(ROOT), COLUMNS="200")
    return subprocess.run(
        [CLI, *args], capture_output=True, text=True, timeout=600, env=env, cwd=ROOT
    )


def _project(tmp_path: Path, name: str) -> tuple[Path, str]:
    repo = tmp_path / name
    shutil.copytree(
        FIXTURES / "shell_project" if name == "shell" else ROOT / "examples" / name, repo
    )
    issue = (repo / "ISSUE.md").read_text()
    (repo / "ISSUE.md").unlink()
    make_git_repo(repo, {})
    return repo, issue


def _problem_dir(run_dir: Path) -> Path:
    [pdir] = list((run_dir / "problems").iterdir())
    return pdir


def _data(pdir: Path, name: str) -> dict:
    return json.loads((pdir / f"{name}.json").read_text())["data"]


def _solve(repo: Path, issue: str, run_dir: Path, *extra: str) -> subprocess.CompletedProcess:
    proc = _cli("solve", "--repo", str(repo), "--issue", issue, "--model", f"scripted:{POLICY}",
                "--run-dir", str(run_dir), *ADAPTIVE, *extra)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def test_an_easy_problem_stops_after_one_wave_and_a_rerun_replays_without_calls(tmp_path):
    repo, issue = _project(tmp_path, "shell")
    run_dir = tmp_path / "run"
    _solve(repo, issue, run_dir)
    pdir = _problem_dir(run_dir)
    adaptive = _data(pdir, "adaptive")
    [decision] = adaptive["decisions"]  # every sample wrote the same fix: one wave was enough
    assert decision["action"] == "stop" and decision["reason"].startswith("agreement")
    ev = decision["evidence"]
    assert (ev["started"], ev["limit"], ev["with_patch"]) == (3, 9, 3)
    assert ev["reproducing_tests"] >= 1 and ev["clusters"][0]["trajectories"] == 3
    generation = _data(pdir, "generation")
    assert len(generation["trajectories"]) == 3
    assert not (pdir / "trajectory-3.json").exists()  # no fourth trajectory was started
    assert "patch=0" in (run_dir / "chosen.patch").read_text()

    # a run killed after generation: its later records are gone; the rerun resumes
    calls = (run_dir / "calls.jsonl").read_text()
    for name in ("generation", "selection", "result"):
        (pdir / f"{name}.json").unlink()
    _solve(repo, issue, run_dir)
    assert (run_dir / "calls.jsonl").read_text() == calls  # not one new model call
    assert _data(pdir, "adaptive") == adaptive  # the decision replayed, not taken again
    assert len(_data(pdir, "generation")["trajectories"]) == 3
    assert "patch=0" in (run_dir / "chosen.patch").read_text()


def test_disagreeing_samples_go_on_to_the_limit(tmp_path):
    """The inventory example's samples follow three strategies (one right fix, two wrong):
    with a strict agreement threshold no wave agrees enough, so every wave runs."""
    repo, issue = _project(tmp_path, "inventory")
    run_dir = tmp_path / "run"
    _solve(repo, issue, run_dir, "--set", "generation.adaptive_agreement=0.9")
    pdir = _problem_dir(run_dir)
    decisions = _data(pdir, "adaptive")["decisions"]
    assert [d["action"] for d in decisions] == ["continue", "continue", "stop"]
    assert decisions[0]["reason"].startswith("disagreement")
    assert decisions[-1]["reason"].startswith("budget")
    assert [d["evidence"]["started"] for d in decisions] == [3, 6, 9]
    assert len(_data(pdir, "generation")["trajectories"]) == 9
