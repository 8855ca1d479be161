"""The scripted example policy answers every stage's real prompt, and its answers are
right: its reproduction exits 2 on the buggy code and 0 once its own edit is applied, and
the example's suite still passes with the fix. (End-to-end use: the solve tests.)"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from codemonkeys.generation.edits import edit_to_patch
from codemonkeys.generation.tags import extract
from codemonkeys.llm.base import Message
from codemonkeys.llm.scripted import ScriptedRequest, load_policy
from codemonkeys.prompts import render
from tests.conftest import FIXTURES, ROOT

POLICY = load_policy(FIXTURES / "policies" / "example_solver.py")
PROJECTS = {
    "inventory": (ROOT / "examples" / "inventory", "python"),
    "shell": (FIXTURES / "shell_project", "shell"),
    "node": (FIXTURES / "node_project", "shell"),
}


def ask(system: str, *turns: str) -> str:
    messages = [Message(role="system", content=system)]
    for i, text in enumerate(turns):
        messages.append(Message(role="user" if i % 2 == 0 else "assistant", content=text))
    req = ScriptedRequest(messages=messages, temperature=0.0, max_tokens=1000)
    return POLICY.respond(req)


def issue_of(name: str) -> str:
    return (PROJECTS[name][0] / "ISSUE.md").read_text()


def run_script(workdir: Path, script: str, language: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-c", script] if language == "python" else ["bash", "-c", script]
    return subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("name", list(PROJECTS))
def test_context_stages(name: str):
    issue = issue_of(name)
    relevance = render("relevance/system", issue=issue)
    wanted = POLICY.PROBLEMS[name]["ranking"][0]
    yes = ask(relevance, render("relevance/user", path=wanted, content="...", note=""))
    assert yes.rstrip().endswith("DECISION: RELEVANT")
    no = ask(relevance, render("relevance/user", path="README.md", content="...", note=""))
    assert no.rstrip().endswith("DECISION: NOT RELEVANT")

    files = [
        {"path": "README.md", "tokens": 10, "summary": "s"},
        {"path": wanted, "tokens": 5, "summary": "s"},
    ]
    ranking = ask(
        render("ranking/system", budget=1000), render("ranking/user", issue=issue, files=files)
    )
    listed = re.search(r"```json\n(.*?)\n```", ranking, re.S).group(1)
    assert listed.startswith(f'["{wanted}"')


@pytest.mark.parametrize("name", list(PROJECTS))
def test_reproduction_and_edit_are_right(name: str, tmp_path: Path):
    project, language = PROJECTS[name]
    if name == "node" and shutil.which("node") is None:
        pytest.skip("node is not installed on this host")
    work = tmp_path / name
    shutil.copytree(project, work)
    issue = issue_of(name)
    lang_name = "Python" if language == "python" else "shell"

    test_system = render("generation/test_system", language_name=lang_name)
    request = render("generation/test_request", issue=issue, language_name=lang_name)
    first = ask(test_system, request)
    script = extract(first, "test")
    before = run_script(work, script, language)
    assert before.returncode == 2, before.stdout + before.stderr
    assert (
        ask(test_system, request, first, "Result: exit code 2 (issue present)")
        .rstrip()
        .endswith("<done>")
    )

    edit_system = render("generation/edit_system")
    context = render("generation/edit_context", issue=issue, context="")
    answer = ask(edit_system, context)
    edit = extract(answer, "edit")
    result = edit_to_patch(edit, lambda p: (work / p).read_text() if (work / p).exists() else None)
    applied = subprocess.run(
        ["patch", "-p1", "--quiet"], input=result.patch, cwd=work, capture_output=True, text=True
    )
    assert applied.returncode == 0, applied.stderr
    after = run_script(work, script, language)
    assert after.returncode == 0, after.stdout + after.stderr
    assert "<done>" in ask(
        edit_system, context, answer, "On the EDITED code: exit code 0 (issue fixed)"
    )

    suite = {
        "inventory": [sys.executable, "-m", "unittest", "discover", "-s", "tests"],
        "shell": ["bash", "tests/run.sh"],
        "node": ["node", "--test", "test/"],
    }[name]
    ran = subprocess.run(suite, cwd=work, capture_output=True, text=True, timeout=120)
    assert ran.returncode == 0, ran.stdout + ran.stderr


def test_selection_tests_then_chooses_a_candidate_its_test_shows_fixed():
    issue = issue_of("inventory")
    good = "diff ...\n+    for min_qty, tier_percent in sorted(item.discount_tiers, reverse=True):"
    candidates = [
        {"id": "c1", "votes": 1, "sources": "a", "patch": "diff ... something else"},
        {"id": "c2", "votes": 1, "sources": "b", "patch": good},
    ]
    system = render("selection/system", language="python")
    initial = render(
        "selection/initial",
        issue=issue,
        files=[],
        example_test="",
        example_results=[],
        candidates=candidates,
        attempts=3,
        ids=["c1", "c2"],
    )
    first = ask(system, initial)
    assert extract(first, "test") and "<choice>" not in first
    runs = [
        {"row": "original code", "verdict": "unfixed", "exit_code": 2, "output": ""},
        {"row": "c1", "verdict": "unfixed", "exit_code": 2, "output": ""},
        {"row": "c2", "verdict": "fixed", "exit_code": 0, "output": ""},
    ]
    results = render("selection/test_results", runs=runs, remaining=2, ids=["c1", "c2"])
    assert extract(ask(system, initial, first, results), "choice") == "c2"
