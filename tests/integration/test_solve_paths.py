"""`codemonkeys solve` as a user runs it from their own directory: relative run
directories give the documented layout, the run's identity follows the issue and the
code (not the repository's name), and a rerun of the same thing pays nothing.

The real CLI in a subprocess, a scripted model, the local sandbox (no Docker needed)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

from tests.conftest import CLI, FIXTURES, ROOT, make_git_repo

POLICY = FIXTURES / "policies" / "example_solver.py"
FAST = [
    "--sandbox", "local",
    "--model", f"scripted:{POLICY}",
    "--set", "generation.samples=2",
    "--set", "generation.test_attempts=3",
    "--set", "generation.edit_attempts=3",
    "--set", "context.rankings=1",
]  # fmt: skip


def _cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    full.update(PYTHONPATH=str(ROOT), COLUMNS="200", **(env or {}))
    return subprocess.run(
        [CLI, *args], capture_output=True, text=True, timeout=300, env=full, cwd=cwd
    )


def _project(tmp_path: Path) -> Path:
    """The shell fixture as the user's checkout in ``tmp_path/bumper``, its issue in
    ``tmp_path/ISSUE.md``."""
    repo = tmp_path / "bumper"
    shutil.copytree(FIXTURES / "shell_project", repo)
    (repo / "ISSUE.md").rename(tmp_path / "ISSUE.md")
    make_git_repo(repo, {})
    return repo


def _calls(run: Path) -> int:
    path = run / "calls.jsonl"
    return len(path.read_text().splitlines()) if path.exists() else 0


def _only_run(runs: Path) -> Path:
    dirs = [d for d in runs.iterdir() if d.is_dir()]
    assert len(dirs) == 1, dirs
    return dirs[0]


def _assert_documented_layout(run: Path) -> None:
    assert (run / "config.json").is_file()
    assert (run / "calls.jsonl").is_file()
    status = json.loads((run / "status.json").read_text())
    assert status["status"] == "finished" and status["by_status"] == {"done": 1}
    (pdir,) = (run / "problems").iterdir()
    for record in ("problem", "context", "generation", "selection", "result"):
        assert (pdir / f"{record}.json").is_file(), record
    assert not (run / "runs").exists()  # never runs/<run>/runs/<run>/...
    nested = [p for p in run.rglob("*") if p.name == run.name and p != run]
    assert not nested, nested


def test_default_relative_run_dir_gives_the_documented_layout(tmp_path):
    """The README's first command shape: relative --repo and --issue-file, the default
    run directory under ./runs; then report, show and a rerun through the absolute path
    all see the same records."""
    _project(tmp_path)
    proc = _cli("solve", "--repo", "bumper", "--issue-file", "ISSUE.md", *FAST, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    run = _only_run(tmp_path / "runs")
    _assert_documented_layout(run)
    assert "patch=0" in (run / "chosen.patch").read_text()
    calls = _calls(run)
    assert calls > 0

    report = _cli("report", f"runs/{run.name}", "--json", cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    rep = json.loads(report.stdout)  # nothing but JSON on stdout
    assert "HTML report:" in report.stderr
    assert rep["run_status"] == "finished"
    (row,) = rep["problems"]
    assert row["status"] == "done" and row["chosen_id"]
    assert rep["summary"]["calls"] == calls

    (pdir,) = (run / "problems").iterdir()
    problem_id = json.loads((pdir / "problem.json").read_text())["id"]
    show = _cli("show", f"runs/{run.name}", problem_id, "-o", "show.html", cwd=tmp_path)
    assert show.returncode == 0, show.stderr
    html = (tmp_path / "show.html").read_text()
    assert "trajectory" in html.lower() and row["chosen_id"] in html

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    again = _cli(
        "solve", "--repo", str(tmp_path / "bumper"), "--issue-file", str(tmp_path / "ISSUE.md"),
        "--run-dir", str(run), *FAST, cwd=elsewhere,
    )  # fmt: skip
    assert again.returncode == 0, again.stdout + again.stderr
    assert _calls(run) == calls  # resumed from the same records: 0 new calls
    assert not (elsewhere / "runs").exists()


def test_any_relative_run_dir_gives_the_documented_layout(tmp_path):
    _project(tmp_path)
    for run_dir in ("foo/bar", "./dot"):
        proc = _cli(
            "solve", "--repo", "./bumper", "--issue-file", "ISSUE.md",
            "--run-dir", run_dir, *FAST, cwd=tmp_path,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stdout + proc.stderr
        _assert_documented_layout(tmp_path / run_dir)


def _problem_ids(run: Path) -> list[str]:
    return sorted(
        json.loads((d / "problem.json").read_text())["id"] for d in (run / "problems").iterdir()
    )


def test_another_issue_in_the_same_run_dir_is_another_problem(tmp_path):
    _project(tmp_path)
    issue = (tmp_path / "ISSUE.md").read_text()
    (tmp_path / "OTHER.md").write_text(issue + "\nAlso: `bump-version minor 0.9.9` gives 0.9.9.\n")
    run_args = ["solve", "--repo", "bumper", "--run-dir", "run", *FAST]
    first = _cli(*run_args, "--issue-file", "ISSUE.md", cwd=tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    calls_first = _calls(tmp_path / "run")

    other = _cli(*run_args, "--issue-file", "OTHER.md", cwd=tmp_path)
    assert other.returncode == 0, other.stdout + other.stderr
    calls_other = _calls(tmp_path / "run")
    assert calls_other > calls_first  # solved, not answered from the first issue's records
    assert len(_problem_ids(tmp_path / "run")) == 2

    again = _cli(*run_args, "--issue-file", "OTHER.md", cwd=tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    assert _calls(tmp_path / "run") == calls_other  # the same issue resumes: 0 new calls


def test_include_uncommitted_reruns_resume_whenever_they_run(tmp_path):
    repo = _project(tmp_path)
    (repo / "notes.txt").write_text("work in progress\n")  # uncommitted user work
    args = ["solve", "--repo", "bumper", "--issue-file", "ISSUE.md", "--include-uncommitted"]
    first = _cli(*args, *FAST, cwd=tmp_path, env={"GIT_COMMITTER_DATE": "2026-01-01T10:00Z"})
    assert first.returncode == 0, first.stdout + first.stderr
    run = _only_run(tmp_path / "runs")
    calls = _calls(run)
    assert calls > 0
    # a minute later: the same work on the same HEAD is the same snapshot, the same run
    again = _cli(*args, *FAST, cwd=tmp_path, env={"GIT_COMMITTER_DATE": "2026-01-01T10:01Z"})
    assert again.returncode == 0, again.stdout + again.stderr
    assert _only_run(tmp_path / "runs") == run
    assert _calls(run) == calls
