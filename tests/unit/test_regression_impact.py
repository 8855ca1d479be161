"""Coverage-guided narrowing of the regression plan (``selection/regression_impact.py``):
the edited functions read from a diff, the choice of tests from traced hits, and whole runs
through local sandboxes with the real pytest and the real tracer plugin."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from codemonkeys.candidates import Candidate
from codemonkeys.config import SelectionConfig
from codemonkeys.execution import ExecutionCache
from codemonkeys.selection.regression import run_regression
from codemonkeys.selection.regression_impact import (
    EditedFile,
    TracedTest,
    choose_tests,
    edited_files,
    edited_functions,
    function_id,
)
from tests.conftest import make_git_repo

TEST_DIRS = ["test", "tests", "testing"]

OPS = '''RATE = 2


def double(x):
    return RATE * x


class Halver:
    @staticmethod
    def half(x):
        """Half of x."""
        return x / 2


def half(x):
    return Halver.half(x)
'''
SUITE = """import sys
import threading

import pytest

from calc.ops import double, half


def test_double():
    assert double(2) == 4


def test_half():
    assert half(4) == 2


@pytest.mark.parametrize("x", [2, 8])
def test_half_many(x):
    assert half(x) * 2 == x


def test_unrelated():
    assert sorted([3, 1]) == [1, 3]


def test_own_tracer_still_works():
    calls = []

    def tracer(frame, event, arg):
        calls.append(event)
        return None

    previous = sys.gettrace()
    sys.settrace(tracer)
    try:
        (lambda: None)()
    finally:
        sys.settrace(previous)
    assert "call" in calls


def test_docstring_kept():
    from calc.ops import Halver

    assert Halver.half.__doc__ == "Half of x."


def test_in_a_thread():
    out = []
    t = threading.Thread(target=lambda: out.append(half(6)))
    t.start()
    t.join()
    assert out == [3]
"""


def _diff(repo: Path, path: str, new: str) -> str:
    f = repo / path
    old = f.read_text()
    f.write_text(new)
    try:
        return subprocess.run(
            ["git", "diff"], cwd=repo, capture_output=True, text=True, check=True
        ).stdout
    finally:
        f.write_text(old)


def test_edited_functions_are_the_innermost_and_enclosing_functions_of_changed_lines():
    assert edited_functions(OPS, {12}) == {"Halver.half": (11, 12)}  # the docstring line
    assert edited_functions(OPS, {9}) == {"Halver.half": (11, 12)}  # a decorator
    assert edited_functions(OPS, {1}) == {}  # module level: only the line itself
    assert edited_functions(OPS, {5, 16}) == {"double": (5, 5), "half": (16, 16)}
    assert edited_functions("def broken(:\n", {1}) == {}


def test_edited_files_skip_tests_and_new_files():
    patch = (
        "--- a/calc/ops.py\n+++ b/calc/ops.py\n@@ -4,2 +4,2 @@\n def double(x):\n"
        "-    return RATE * x\n+    return x + x\n"
        "--- a/tests/test_ops.py\n+++ b/tests/test_ops.py\n@@ -1 +1 @@\n-import sys\n+import os\n"
        "--- /dev/null\n+++ b/calc/new.py\n@@ -0,0 +1 @@\n+X = 1\n"
    )
    originals = {"calc/ops.py": OPS, "tests/test_ops.py": SUITE}
    found = edited_files([Candidate(id="a", patch=patch)], originals.get, TEST_DIRS)
    assert found == {"calc/ops.py": EditedFile(changed=[5], functions={"double": (5, 5)})}
    assert found["calc/ops.py"].watch() == {"entries": [5], "changed": [5], "lines": [5]}


def test_the_choice_folds_parameters_ranks_changed_lines_first_and_keeps_to_the_budget():
    edited = {"m.py": EditedFile(changed=[3], functions={"f": (2, 4)})}
    traced = [
        TracedTest(id="t.py::test_calls_f[1]", hits={"m.py": [2]}, seconds=3.0),
        TracedTest(id="t.py::test_calls_f[2]", hits={"m.py": [2]}, seconds=3.0),
        TracedTest(id="t.py::test_none", hits={}, seconds=0.1),
        TracedTest(id="t.py::test_changed_line", hits={"m.py": [2, 3]}, seconds=5.0),
    ]
    assert function_id("t.py::C::test_x[a-1::b]") == "t.py::C::test_x"
    wide = choose_tests(traced, edited, budget_s=100)
    assert wide.status == "narrowed"
    assert wide.tests_kept == ["t.py::test_calls_f", "t.py::test_changed_line"]
    assert wide.functions == {"m.py::f": 2} and wide.edited_lines_executed == 1
    tight = choose_tests(traced, edited, budget_s=5.5)
    assert tight.tests_kept == ["t.py::test_changed_line"]  # the changed line first
    assert tight.tests_cut == ["t.py::test_calls_f"]
    nothing = choose_tests(traced[2:3], edited, budget_s=100)
    assert nothing.status == "whole-files" and nothing.tests_kept == []


@pytest.fixture
def calc_repo(tmp_path):
    repo = tmp_path / "repo"
    files = {"calc/__init__.py": "", "calc/ops.py": OPS, "tests/__init__.py": "",
             "tests/test_ops.py": SUITE}  # fmt: skip
    return repo, make_git_repo(repo, files)


def _run(repo: Path, sha: str, candidates: list[Candidate], config: SelectionConfig):
    from codemonkeys.sandbox import SandboxPool, SandboxSpec

    pool = SandboxPool(SandboxSpec(kind="local", repo_path=repo, base_commit=sha), size=2)
    try:
        cache = ExecutionCache(pool.lease, timeout=60)
        return run_regression(candidates, cache, config, test_dirs=TEST_DIRS, workers=2)
    finally:
        pool.close()


def test_the_impact_run_keeps_the_tests_that_execute_the_edit_and_catches_a_breakage(calc_repo):
    """A candidate that breaks ``Halver.half``: the plan runs only the tests that call it
    (through ``half``, in a thread too), not ``test_double`` or the unrelated ones, and
    the broken tests are found; a correct rewrite breaks nothing."""
    repo, sha = calc_repo
    wrong = Candidate(id="wrong", patch=_diff(repo, "calc/ops.py", OPS.replace("x / 2", "x // 3")))
    right = Candidate(id="right", patch=_diff(repo, "calc/ops.py", OPS.replace("x / 2", "x * 0.5")))
    rec = _run(repo, sha, [wrong, right], SelectionConfig())
    assert rec.framework == "pytest" and rec.impact is not None, rec.skipped_reason
    assert rec.impact.status == "narrowed", rec.impact
    assert rec.impact.tests_kept == [
        "tests/test_ops.py::test_half",
        "tests/test_ops.py::test_half_many",
        "tests/test_ops.py::test_in_a_thread",
    ]
    assert rec.impact.tests_traced == 8 and rec.impact.functions == {"calc/ops.py::Halver.half": 3}
    assert rec.impact.files_executing == ["tests/test_ops.py"]
    assert "tests/test_ops.py::test_half_many" in rec.command and "test_double" not in rec.command
    assert rec.test_files == ["tests/test_ops.py"]
    assert rec.baseline_passing == 4  # test_half, two parameters, the thread
    assert {t.rsplit(".", 1)[-1] for t in rec.candidates["wrong"].regressions} == {
        "test_half",
        "test_half_many[2]",
        "test_half_many[8]",
        "test_in_a_thread",
    }
    assert rec.candidates["right"].status == "ok" and rec.candidates["right"].regressions == []


def test_a_module_level_edit_falls_back_to_the_whole_files(calc_repo):
    """``RATE`` runs at import, before any test: no test executes the edit, so the plan
    keeps its whole file (never less evidence than without the impact run)."""
    repo, sha = calc_repo
    rate = Candidate(
        id="rate", patch=_diff(repo, "calc/ops.py", OPS.replace("RATE = 2", "RATE = 3"))
    )
    rec = _run(repo, sha, [rate], SelectionConfig())
    assert rec.impact is not None and rec.impact.status == "whole-files", rec.impact
    assert rec.impact.reason == "no test executed the edited code"
    assert rec.command.endswith("tests/test_ops.py") and rec.baseline_passing == 8
    assert any(t.endswith("test_double") for t in rec.candidates["rate"].regressions)
    off = _run(repo, sha, [rate], SelectionConfig(regression_impact=False))
    assert off.impact is None and off.command == rec.command


def test_the_tracer_changes_no_outcome(calc_repo, tmp_path):
    """The same suite with and without the plugin: the same outcome for every test, and
    the plugin's report names every test."""
    from codemonkeys.selection.regression_impact import impact_command, parse_impact

    repo, _ = calc_repo
    junit = tmp_path / "plain.xml"
    base = f"{sys.executable} -m pytest -q -p no:cacheprovider"
    plain = subprocess.run(
        f"{base} --junitxml={junit} tests", shell=True, cwd=repo, capture_output=True, text=True
    )
    (repo / ".codemonkeys-regression").mkdir()
    watch = {"calc/ops.py": {"entries": [11], "changed": [12], "lines": [11, 12]}}
    traced_cmd = impact_command(f"{base} --junitxml={tmp_path}/traced.xml tests", watch)
    traced = subprocess.run(traced_cmd, shell=True, cwd=repo, capture_output=True, text=True)
    assert plain.returncode == traced.returncode == 0, traced.stdout + traced.stderr
    # the probes are compiled from source, never cached: a plain run afterwards has none
    for pyc in (repo / "calc").rglob("*.pyc"):
        assert b"__cm_impact_probe__" not in pyc.read_bytes(), pyc

    from codemonkeys.selection.regression_outcomes import parse_junit

    assert parse_junit(junit.read_text()) == parse_junit((tmp_path / "traced.xml").read_text())
    report = parse_impact((repo / ".codemonkeys-regression/impact.jsonl").read_text())
    assert report is not None and len(report) == 8
    hits = {t.id: t.hits for t in report}
    assert hits["tests/test_ops.py::test_in_a_thread"] == {"calc/ops.py": [11, 12]}
    assert hits["tests/test_ops.py::test_double"] == {}
    assert hits["tests/test_ops.py::test_docstring_kept"] == {}
    assert all(not t.traced for t in report)  # probes, not the costly tracer
    assert json.loads((repo / ".codemonkeys-regression/impact-watch.json").read_text()) == watch


def test_an_interpreter_exit_in_a_narrowed_run_is_no_clean_verdict(calc_repo):
    """The hostile wrong fix of ``test_selection_evidence.py`` (``sys.exit(0)`` at the end
    of the edited module) against the narrowed pytest plan: never "breaks nothing"."""
    repo, sha = calc_repo
    hostile = OPS.replace("x / 2", "x // 3") + "\nimport sys\n\nsys.exit(0)\n"
    exit_at_import = Candidate(id="exit", patch=_diff(repo, "calc/ops.py", hostile))
    rec = _run(repo, sha, [exit_at_import], SelectionConfig())
    assert rec.impact is not None and rec.impact.status == "narrowed", rec.impact
    assert rec.regressions_of("exit") != 0, rec.candidates["exit"]


def test_an_edited_module_imported_before_the_hook_is_traced_instead(calc_repo):
    """When the edited module is already imported as pytest starts (here by the command
    itself), the import hook cannot add probes: the plugin traces that file with
    ``sys.settrace`` during each test instead, and says so."""
    from codemonkeys.selection.regression_impact import impact_command, parse_impact

    repo, _ = calc_repo
    (repo / ".codemonkeys-regression").mkdir()
    early = (
        f"{sys.executable} -c 'import calc.ops, sys, pytest; "
        'sys.exit(pytest.main(["-q", "-p", "no:cacheprovider", "tests"]))\''
    )
    watch = {"calc/ops.py": {"entries": [11], "changed": [12], "lines": [11, 12]}}
    proc = subprocess.run(
        impact_command(early, watch), shell=True, cwd=repo, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = parse_impact((repo / ".codemonkeys-regression/impact.jsonl").read_text())
    assert report is not None and all(t.traced == ["calc/ops.py"] for t in report)
    hits = {t.id: t.hits for t in report}
    assert hits["tests/test_ops.py::test_in_a_thread"] == {"calc/ops.py": [12]}
    assert hits["tests/test_ops.py::test_half"] == {"calc/ops.py": [12]}
    assert hits["tests/test_ops.py::test_double"] == {}


def test_a_grep_pattern_that_starts_with_a_dash_is_a_pattern_not_an_option(calc_repo):
    from codemonkeys.sandbox import SandboxSpec, open_sandbox
    from codemonkeys.selection.regression_plan import SandboxRepo

    repo, sha = calc_repo
    with open_sandbox(SandboxSpec(kind="local", repo_path=repo, base_commit=sha)) as sb:
        found = SandboxRepo(sb).count("-?[a-z]+ / 2", ["calc/ops.py", "tests/test_ops.py"])
    assert list(found) == ["calc/ops.py"]
