"""`codemonkeys solve` with the user's own prompt templates (``prompts.dir``): the prompt
sent is the override, and records made with the packaged prompt are recomputed, not
reused. The real CLI in a subprocess, a scripted model, the local sandbox."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

from codemonkeys.prompts import prompts_dir
from codemonkeys.store import RunStore
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
MARKER = "HOUSE-RULE-7: keep reproduction scripts under 40 lines."


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env.update(PYTHONPATH=str(ROOT), COLUMNS="200")
    return subprocess.run(
        [CLI, *args], capture_output=True, text=True, timeout=300, env=env, cwd=cwd
    )


def _generation_fingerprint(run: Path) -> str:
    (pdir,) = (run / "problems").iterdir()
    return json.loads((pdir / "generation.json").read_text())["fingerprint"]


def test_an_overridden_template_is_what_the_model_is_sent(tmp_path):
    repo = tmp_path / "bumper"
    shutil.copytree(FIXTURES / "shell_project", repo)
    (repo / "ISSUE.md").rename(tmp_path / "ISSUE.md")
    make_git_repo(repo, {})
    mine = tmp_path / "my-prompts" / "generation"
    mine.mkdir(parents=True)
    packaged = (prompts_dir() / "generation" / "test_system.j2").read_text()
    (mine / "test_system.j2").write_text(packaged.rstrip("\n") + "\n\n" + MARKER + "\n")
    args = ["solve", "--repo", "bumper", "--issue-file", "ISSUE.md", "--run-dir", "runs/r"]

    plain = _cli(*args, *FAST, cwd=tmp_path)
    assert plain.returncode == 0, plain.stdout + plain.stderr
    run = tmp_path / "runs" / "r"
    packaged_fingerprint = _generation_fingerprint(run)

    own = _cli(*args, *FAST, "--set", 'prompts.dir="my-prompts"', cwd=tmp_path)
    assert own.returncode == 0, own.stdout + own.stderr
    assert _generation_fingerprint(run) != packaged_fingerprint  # recomputed, not reused
    (pid,) = RunStore(run).problem_ids()
    assert (run / "problems" / pid / "stale").is_dir()  # the packaged-prompt record kept aside

    sent = RunStore(run).read_prompts(pid)
    tests = [r["messages"][0]["content"] for r in sent if r["stage"] == "tests"]
    assert any(MARKER in s for s in tests), "the override never reached the model"
    edit_system = (prompts_dir() / "generation" / "edit_system.j2").read_text().strip()
    edits = [r["messages"][0]["content"].strip() for r in sent if r["stage"] == "edits"]
    assert edits and all(s == edit_system for s in edits)  # the rest stays packaged
    others = [r for r in sent if r["stage"] != "tests"]
    assert not any(MARKER in json.dumps(r) for r in others)
