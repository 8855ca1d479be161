"""`codemonkeys solve` with the user's own prompt templates (``prompts.dir``): the prompt
sent is the override, and records made with the packaged prompt are recomputed, not
reused. The real CLI in a subprocess, a scripted model, the local sandbox."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from codemonkeys.prompts import prompts_dir
from codemonkeys.store import RunStore
from tests.conftest import FIXTURES, make_git_repo
from tests.integration.test_solve_paths import FAST, _cli

MARKER = "HOUSE-RULE-7: keep reproduction scripts under 40 lines."


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
