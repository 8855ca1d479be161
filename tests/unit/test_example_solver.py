"""The scripted example policy answers every stage's real prompt, knows only what the
prompt shows, and its right strategy is really right: its reproduction exits 2 on the buggy
code and 0 once its own edit (written against the packed context) is applied, and the
project's suite still passes. (End-to-end use: the solve, swebench run and ensemble tests.)"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from codemonkeys.context.packing import PackedFile, render_files
from codemonkeys.generation.edits import edit_to_patch
from codemonkeys.llm.base import Message
from codemonkeys.llm.scripted import ScriptedRequest, load_policy
from codemonkeys.llm.tags import extract
from codemonkeys.prompts import templates_for
from tests.conftest import FIXTURES, ROOT

render = templates_for(None).render  # the packaged prompts, as the policy expects them
POLICY = load_policy(FIXTURES / "policies" / "example_solver.py")
PROJECTS = {
    "inventory": (ROOT / "examples" / "inventory", "python", "inventory/pricing.py"),
    "statkit": (FIXTURES / "swebench" / "statkit" / "base", "python", "stats.py"),
    "shell": (FIXTURES / "shell_project", "shell", "bin/bump-version"),
    "node": (FIXTURES / "node_project", "shell", "src/slug.js"),
}


def ask(stage: str, system: str, *turns: str, key: str = "traj-0") -> str:
    messages = [Message(role="system", content=system)]
    for i, text in enumerate(turns):
        messages.append(Message(role="user" if i % 2 == 0 else "assistant", content=text))
    req = ScriptedRequest(messages=messages, temperature=0.0, max_tokens=1000, key=key, stage=stage)
    return POLICY.respond(req)


def issue_of(name: str) -> str:
    project = PROJECTS[name][0]
    issue = project / "ISSUE.md"
    return (
        issue.read_text()
        if issue.exists()
        else (project.parent / "problem_statement.md").read_text()
    )


def context_of(name: str, *paths: str) -> str:
    project = PROJECTS[name][0]
    files = [
        PackedFile(path=p, tokens=1, file_tokens=1, content=(project / p).read_text())
        for p in paths
    ]
    return render("generation/edit_context", issue=issue_of(name), context=render_files(files))


def run_script(workdir: Path, script: str, language: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-c", script] if language == "python" else ["bash", "-c", script]
    return subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("name", list(PROJECTS))
def test_relevance_is_decided_from_the_file_text_shown(name: str):
    project, _, wanted = PROJECTS[name]
    relevance = render("relevance/system", issue=issue_of(name))
    code = (project / wanted).read_text()
    yes = ask("relevance", relevance, render("relevance/user", path=wanted, content=code, note=""))
    assert yes.rstrip().endswith("DECISION: RELEVANT")
    # the same path with other contents: the policy does not know files by name
    no = ask(
        "relevance", relevance, render("relevance/user", path=wanted, content="x = 1", note="")
    )
    assert no.rstrip().endswith("DECISION: NOT RELEVANT")
    other = ask(
        "relevance", relevance, render("relevance/user", path="README.md", content=code, note="")
    )
    assert other.rstrip().endswith("DECISION: RELEVANT")


def test_ranking_lists_only_the_paths_shown_most_important_first():
    issue = issue_of("inventory")
    files = [
        {"path": "inventory/orders.py", "tokens": 10, "summary": "contains `discount_percent(`"},
        {"path": "README.md", "tokens": 10, "summary": "nothing"},
        {
            "path": "inventory/pricing.py",
            "tokens": 5,
            "summary": "contains `def discount_percent(`",
        },
    ]
    answer = ask(
        "ranking",
        render("ranking/system", budget=1000),
        render("ranking/user", issue=issue, files=files),
    )
    listed = re.search(r"```json\n(.*?)\n```", answer, re.S).group(1)
    assert listed == '["inventory/pricing.py", "inventory/orders.py", "README.md"]'
    only = ask(
        "ranking",
        render("ranking/system", budget=1000),
        render("ranking/user", issue=issue, files=files[:2]),
    )
    assert "pricing.py" not in only


@pytest.mark.parametrize("name", list(PROJECTS))
def test_no_edit_without_the_code_in_the_context(name: str):
    """An empty context, or one holding only other files: no edit at all (the fix's code
    is in the project, but not in the prompt)."""
    project = PROJECTS[name][0]
    others = [p.name for p in project.iterdir() if p.is_file() and p.suffix in (".md", ".json")]
    for shown in ([], others):
        answer = ask("edits", render("generation/edit_system"), context_of(name, *shown))
        assert "<edit>" not in answer and "cannot" in answer


@pytest.mark.parametrize("name", list(PROJECTS))
def test_reproduction_and_edit_are_right(name: str, tmp_path: Path):
    project, language, wanted = PROJECTS[name]
    if name == "node" and shutil.which("node") is None:
        pytest.skip("node is not installed on this host")
    work = tmp_path / name
    shutil.copytree(project, work)
    issue = issue_of(name)
    lang_name = "Python" if language == "python" else "shell"

    test_system = render("generation/test_system", language_name=lang_name)
    request = render("generation/test_request", issue=issue, language_name=lang_name)
    first = ask("tests", test_system, request)
    script = extract(first, "test")
    before = run_script(work, script, language)
    assert before.returncode == 2, before.stdout + before.stderr
    again = ask("tests", test_system, request, first, "Result: exit code 2 (issue present)")
    assert again.rstrip().endswith("<done>")

    edit_system = render("generation/edit_system")
    context = context_of(name, wanted)
    answer = ask("edits", edit_system, context)
    edit = extract(answer, "edit")
    assert edit.startswith(wanted + "\n")  # the path of the packed file holding the code
    result = edit_to_patch(edit, lambda p: (work / p).read_text() if (work / p).exists() else None)
    applied = subprocess.run(
        ["patch", "-p1", "--quiet"], input=result.patch, cwd=work, capture_output=True, text=True
    )
    assert applied.returncode == 0, applied.stderr
    after = run_script(work, script, language)
    assert after.returncode == 0, after.stdout + after.stderr
    assert "<done>" in ask(
        "edits", edit_system, context, answer, "On the EDITED code: exit code 0 (issue fixed)"
    )

    suite = {
        "inventory": [sys.executable, "-m", "unittest", "discover", "-s", "tests"],
        "statkit": [sys.executable, "-m", "unittest", "discover", "-s", "tests"],
        "shell": ["bash", "tests/run.sh"],
        "node": ["node", "--test", "test/"],
    }[name]
    ran = subprocess.run(suite, cwd=work, capture_output=True, text=True, timeout=120)
    assert ran.returncode == 0, ran.stdout + ran.stderr


@pytest.mark.parametrize("name", ["inventory", "statkit"])
def test_wrong_strategies_pass_their_own_test_but_not_the_right_one(name: str, tmp_path: Path):
    project, language, wanted = PROJECTS[name]
    problem = POLICY.PROBLEMS[name]
    right_test = problem["strategies"][0]["test"]
    for index in (1, 2):
        work = tmp_path / f"{name}-{index}"
        shutil.copytree(project, work)
        answer = ask(
            "edits", render("generation/edit_system"), context_of(name, wanted), key=f"traj-{index}"
        )
        result = edit_to_patch(extract(answer, "edit"), lambda p, w=work: (w / p).read_text())
        subprocess.run(
            ["patch", "-p1", "--quiet"], input=result.patch, cwd=work, check=True, text=True
        )
        own = run_script(work, problem["strategies"][index]["test"], language)
        assert own.returncode == 0, own.stdout + own.stderr
        assert run_script(work, problem["selector_test"], language).returncode == 2
        if index == 1:
            assert run_script(work, right_test, language).returncode == 2


def _selection_turns(verdicts: dict[str, str]) -> str:
    issue = issue_of("inventory")
    candidates = [
        {"id": cid, "votes": 3 - i, "sources": "s", "patch": "diff ..."}
        for i, cid in enumerate(verdicts)
    ]
    system = render("selection/system", language="python")
    ids = list(verdicts)
    initial = render(
        "selection/initial", issue=issue, files=[], example_test="", example_results=[],
        candidates=candidates, attempts=3, ids=ids,
    )  # fmt: skip
    first = ask("selection", system, initial, key="x:selection")
    assert extract(first, "test") and "<choice>" not in first
    runs = [{"row": "original code", "verdict": "unfixed", "exit_code": 2, "output": ""}]
    runs += [{"row": c, "verdict": v, "exit_code": 0, "output": ""} for c, v in verdicts.items()]
    results = render("selection/test_results", runs=runs, remaining=2, ids=ids)
    return extract(ask("selection", system, initial, first, results, key="x:selection"), "choice")


def test_selection_chooses_from_the_test_results_it_was_shown():
    assert _selection_turns({"c1": "unfixed", "c2": "fixed", "c3": "unfixed"}) == "c2"
    assert _selection_turns({"c1": "unfixed", "c2": "unfixed", "c3": "fixed"}) == "c3"
    # several fixed: the best voted as listed; none fixed: the best voted
    assert _selection_turns({"c1": "fixed", "c2": "unfixed", "c3": "fixed"}) == "c1"
    assert _selection_turns({"c1": "unfixed", "c2": "unfixed", "c3": "unfixed"}) == "c1"


def test_the_stage_comes_from_the_request_metadata_not_the_wording():
    with pytest.raises(ValueError, match="unknown stage"):
        ask(
            "",
            render("relevance/system", issue=issue_of("inventory")),
            "File: x\n<file>\n\n</file>",
        )
