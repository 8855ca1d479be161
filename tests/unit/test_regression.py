"""The regression verifier without Docker: discovery on real git repositories, outcome
parsing on real runner output (unittest, pytest's JUnit XML and ``-rA`` report), flaky
filtering, and a whole run through local sandboxes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from codemonkeys.candidates import Candidate
from codemonkeys.config import SelectionConfig
from codemonkeys.execution import ExecutionCache
from codemonkeys.selection.regression import (
    SuiteRun,
    baseline,
    flaky_tests,
    regressions,
    run_regression,
)
from codemonkeys.selection.regression_discovery import (
    build_command,
    detect_framework,
    discover_tests,
    import_pattern,
)
from codemonkeys.selection.regression_outcomes import (
    SUITE,
    parse_go_json,
    parse_junit,
    parse_outcomes,
    parse_pytest_report,
    parse_sympy,
    parse_unittest,
)
from tests.conftest import make_git_repo

TEST_DIRS = ["test", "tests", "testing"]


def git_grep(repo: Path):
    def grep(regex: str, paths):
        proc = subprocess.run(
            ["git", "grep", "-l", "-E", regex, "--", *paths],
            cwd=repo,
            capture_output=True,
            text=True,
        )
        return proc.stdout.split()

    return grep


REPO = {
    "pkg/__init__.py": "",
    "pkg/core.py": "def f():\n    return 1\n",
    "pkg/util.py": "def g():\n    return 2\n",
    "pkg/tests/__init__.py": "",
    "pkg/tests/test_core.py": "from pkg.core import f\n",  # name + import
    "tests/test_api.py": "import pkg.core as c\n",  # import only
    "tests/test_other.py": "from pkg import core, util\n",  # `from parent import module`
    "tests/test_unrelated.py": "from pkg.util import g\n",
    "tests/test_corex.py": "import pkg.corex\n",  # a longer module name: no match
    "docs/test_core.txt": "not a test file\n",
    "other/test_core.py": "# same name, farther away\n",
}


def test_discovery_by_name_and_import_best_first(tmp_path):
    make_git_repo(tmp_path, REPO)
    files = sorted(REPO)
    found = discover_tests(
        files, ["pkg/core.py"], git_grep(tmp_path), test_dirs=TEST_DIRS, limit=10
    )
    assert found == {
        "pkg/tests/test_core.py": "name+import+package-dir",
        "tests/test_api.py": "import",
        "tests/test_other.py": "import",
        "other/test_core.py": "name",
    }
    # the limit keeps the best
    assert list(
        discover_tests(files, ["pkg/core.py"], git_grep(tmp_path), test_dirs=TEST_DIRS, limit=1)
    ) == ["pkg/tests/test_core.py"]
    # edits to test files alone relate to nothing
    assert (
        discover_tests(
            files, ["tests/test_api.py"], git_grep(tmp_path), test_dirs=TEST_DIRS, limit=10
        )
        == {}
    )


def test_import_pattern_matches_each_import_form_with_git_grep(tmp_path):
    lines = {
        "a.py": "import pkg.core\n",
        "b.py": "from pkg.core import f\n",
        "c.py": "from pkg import util, core  # both\n",
        "d.py": "import pkg.corex\n",
        "e.py": "from pkg import corex\n",
        "f.py": "x = 'pkg.core'\n",
    }
    make_git_repo(tmp_path, lines)
    assert sorted(git_grep(tmp_path)(import_pattern("pkg.core"), sorted(lines))) == [
        "a.py",
        "b.py",
        "c.py",
    ]


def test_discovery_by_part_of_the_name_and_other_prefixes():
    files = [
        "sphinx/ext/viewcode.py",
        "tests/test_ext_viewcode.py",
        "tests/test_ext_viewcode_extra.py",
        "tests/test_viewcodes.py",  # a word starting with the module's name
        "pylint/lint/expand_modules.py",
        "tests/lint/unittest_expand_modules.py",  # pylint's prefix
        "tests/conftest.py",
        "tests/roots/test-root/conf.py",
    ]
    found = discover_tests(
        files,
        ["sphinx/ext/viewcode.py", "pylint/lint/expand_modules.py"],
        lambda regex, paths: [],
        test_dirs=TEST_DIRS,
        limit=10,
    )
    assert found == {  # the root's tests/ is the nearest test directory of both
        "tests/lint/unittest_expand_modules.py": "name-part+package-dir",
        "tests/test_ext_viewcode.py": "name-part+package-dir",
        "tests/test_ext_viewcode_extra.py": "name-part+package-dir",
        "tests/test_viewcodes.py": "name-part+package-dir",
    }
    assert "tests/test_ext_viewcode.py" in discover_tests(
        ["sphinx/ext/viewcode.py", "tests/test_views.py", "tests/test_ext_viewcode.py"],
        ["sphinx/ext/viewcode.py"], lambda regex, paths: [], test_dirs=TEST_DIRS, limit=1,
    )  # fmt: skip


def test_go_and_js_tests_by_convention():
    files = [
        "svc/handler.go",
        "svc/handler_test.go",
        "svc/db_test.go",
        "web/slug.js",
        "web/slug.test.js",
    ]
    found = discover_tests(
        files, ["svc/handler.go", "web/slug.js"], lambda r, p: [], test_dirs=TEST_DIRS, limit=10
    )
    assert found == {
        "svc/handler_test.go": "name+package",
        "svc/db_test.go": "package",
        "web/slug.test.js": "name",
    }


@pytest.mark.parametrize(
    ("files", "tests", "has_pytest", "framework"),
    [
        (["django/db.py", "tests/runtests.py"], ["tests/x/test_a.py"], True, "django"),
        (["sympy/core.py", "bin/test"], ["sympy/tests/test_a.py"], True, "sympy"),
        (["pkg/a.py"], ["tests/test_a.py"], True, "pytest"),
        (["pkg/a.py"], ["tests/test_a.py"], False, "unittest"),
        (["a.go"], ["a_test.go"], False, "go"),
        (["package.json", "a.js"], ["a.test.js"], False, "npm"),
        (["pkg/a.py"], [], True, "none"),
    ],
)
def test_framework_detection(files, tests, has_pytest, framework):
    assert detect_framework(files + tests, tests, has_pytest) == framework


def test_commands_per_framework():
    assert build_command("django", ["tests/forms_tests/test_x.py"]) == (
        "python tests/runtests.py --verbosity 2 --parallel 1 forms_tests.test_x"
    )
    assert (
        build_command("unittest", ["pkg/tests/test_a.py"])
        == "python -m unittest -v pkg.tests.test_a"
    )
    assert "--junitxml=" in build_command("pytest", ["t/test_a.py"])
    assert build_command("sympy", ["sympy/a/tests/test_b.py"]).startswith(
        "python bin/test -C --verbose"
    )
    assert build_command("go", ["svc/a_test.go", "svc/b_test.go"]) == "go test -json ./svc"


SUITE_PY = """import unittest


class T(unittest.TestCase):
    def test_ok(self):
        pass

    def test_fail(self):
        self.assertEqual(1, 2)

    def test_error(self):
        raise RuntimeError("boom")

    @unittest.skip("not today")
    def test_skip(self):
        pass
"""

EXPECTED = {
    "test_ok": "passed",
    "test_fail": "failed",
    "test_error": "error",
    "test_skip": "skipped",
}


def _by_name(outcomes: dict[str, str]) -> dict[str, str]:
    return {tid.replace("::", ".").rsplit(".", 1)[-1]: s for tid, s in outcomes.items()}


def test_parse_real_unittest_verbose_output(tmp_path):
    (tmp_path / "test_suite.py").write_text(SUITE_PY)
    proc = subprocess.run(
        [sys.executable, "-m", "unittest", "-v", "test_suite"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    got = parse_unittest(proc.stdout + proc.stderr)
    assert got == {f"test_suite.T.{n}": s for n, s in EXPECTED.items()}
    assert parse_outcomes(proc.stderr, None, proc.returncode)[0] == "unittest"


def test_parse_real_pytest_junit_xml_and_short_report(tmp_path):
    (tmp_path / "test_suite.py").write_text(SUITE_PY)
    xml = tmp_path / "out.xml"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-rA",
            "-p",
            "no:cacheprovider",
            f"--junitxml={xml}",
            "test_suite.py",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    # pytest calls an exception inside a test a failure (errors are for fixtures)
    expected = {**EXPECTED, "test_error": "failed"}
    junit = parse_junit(xml.read_text())
    assert junit == {f"test_suite.T.{n}": s for n, s in expected.items()}
    assert parse_outcomes(proc.stdout, xml.read_text(), proc.returncode) == ("junit", junit)
    # without readable XML: pytest's own -rA short summary (it names skips by line only)
    assert _by_name(parse_pytest_report(proc.stdout)) == {
        n: s for n, s in expected.items() if s != "skipped"
    }
    assert parse_outcomes(proc.stdout, "<not xml", proc.returncode)[0] == "pytest-report"


def test_parse_sympy_and_go_reports_and_the_exit_code_fallback():
    sympy_out = (
        "============================= test process starts ==============================\n"
        "sympy/core/tests/test_basic.py[3] \n"
        "test_a ok\n"
        "test_b F\n"
        "test_c E\n"
        "sympy/core/tests/test_expr.py[1] \n"
        "test_a ok\n"
    )
    assert parse_sympy(sympy_out) == {
        "sympy/core/tests/test_basic.py::test_a": "passed",
        "sympy/core/tests/test_basic.py::test_b": "failed",
        "sympy/core/tests/test_basic.py::test_c": "error",
        "sympy/core/tests/test_expr.py::test_a": "passed",
    }
    go_out = (
        '{"Action":"run","Package":"ex/svc","Test":"TestA"}\n'
        '{"Action":"pass","Package":"ex/svc","Test":"TestA"}\n'
        '{"Action":"fail","Package":"ex/svc","Test":"TestB"}\n'
        '{"Action":"fail","Package":"ex/svc"}\n'
    )
    assert parse_go_json(go_out) == {"ex/svc::TestA": "passed", "ex/svc::TestB": "failed"}
    assert parse_outcomes("all good\n", None, 0) == ("exit-code", {SUITE: "passed"})
    assert parse_outcomes("oops\n", None, 1) == ("exit-code", {SUITE: "failed"})


def test_flaky_tests_never_count_and_failures_need_a_passing_baseline():
    first = {"a": "passed", "b": "passed", "c": "failed", "d": "passed"}
    second = {"a": "passed", "b": "failed", "c": "failed", "d": "passed"}
    assert flaky_tests(first, second) == ["b"]
    passing = baseline(first, second)
    assert passing == {"a", "d"}
    cand = SuiteRun(
        parser="unittest",
        exit_code=1,
        outcomes={"a": "failed", "b": "failed", "c": "failed", "d": "error"},
    )
    assert regressions(passing, cand) == ["a", "d"]  # b is flaky, c failed before
    # a candidate whose run reports no test at all (import error) broke every baseline test
    crashed = SuiteRun(parser="exit-code", exit_code=1, outcomes={SUITE: "failed"})
    assert regressions(passing, crashed) == ["a", "d"]
    # a collection error: the baseline tests are missing from a failed run
    collection = SuiteRun(parser="junit", exit_code=2, outcomes={"tests.test_ops": "error"})
    assert regressions(passing, collection) == ["a", "d"]
    # missing from a run that passed (e.g. renamed): not counted
    assert (
        regressions(passing, SuiteRun(parser="junit", exit_code=0, outcomes={"a": "passed"})) == []
    )
    # with only exit codes on both sides, the suite is one test
    assert regressions({SUITE}, crashed) == [SUITE]
    assert (
        regressions({SUITE}, SuiteRun(parser="exit-code", exit_code=0, outcomes={SUITE: "passed"}))
        == []
    )


# -- a whole run through local sandboxes ---------------------------------------------------
def test_run_regression_in_local_sandboxes(tmp_path):
    from codemonkeys.sandbox import SandboxPool, SandboxSpec

    marker = tmp_path / "flaky-marker"
    suite = f"""import os
import unittest

from calc.ops import double, half


class OpsTest(unittest.TestCase):
    def test_double(self):
        self.assertEqual(double(2), 4)

    def test_half(self):
        self.assertEqual(half(4), 2)

    def test_flaky(self):
        # fails in whichever run gets here first, passes afterwards
        try:
            os.close(os.open({str(marker)!r}, os.O_CREAT | os.O_EXCL))
        except FileExistsError:
            return
        self.fail("first run")
"""
    repo = tmp_path / "repo"
    sha = make_git_repo(
        repo,
        {
            "calc/__init__.py": "",
            "calc/ops.py": "def double(x):\n    return 2 * x\n\n\ndef half(x):\n    return x / 2\n",
            "tests/__init__.py": "",
            "tests/test_ops.py": suite,
        },
    )

    def diff(new_ops: str) -> str:
        path = repo / "calc/ops.py"
        old = path.read_text()
        path.write_text(new_ops)
        try:
            return subprocess.run(["git", "diff"], cwd=repo, capture_output=True, text=True).stdout
        finally:
            path.write_text(old)

    good = Candidate(
        id="good",
        patch=diff("def double(x):\n    return x + x\n\n\ndef half(x):\n    return x / 2\n"),
    )
    bad = Candidate(
        id="bad",
        patch=diff("def double(x):\n    return 2 * x\n\n\ndef half(x):\n    return x // 3\n"),
    )
    broken = Candidate(
        id="broken", patch=diff("def double(x):\n    return 2 * x\n\nhalf = undefined_name\n")
    )
    stale = Candidate(id="stale", patch=good.patch.replace("return 2 * x", "return 3 * x"))

    pool = SandboxPool(SandboxSpec(kind="local", repo_path=repo, base_commit=sha), size=2)
    try:
        cache = ExecutionCache(pool.lease, timeout=60)
        # the whole file: test_flaky calls no edited function, the impact run would drop it
        config = SelectionConfig(regression_impact=False)
        rec = run_regression(
            [good, bad, broken, stale], cache, config, test_dirs=TEST_DIRS, workers=2
        )
    finally:
        pool.close()
    assert rec.source == "discovered" and rec.test_files == ["tests/test_ops.py"]
    assert rec.framework in ("pytest", "unittest")
    assert rec.flaky == [t for t in rec.flaky if t.endswith("test_flaky")] and len(rec.flaky) == 1
    assert rec.baseline_passing == 2
    assert rec.candidates["good"].regressions == []
    assert [t.rsplit(".", 1)[-1].rsplit(":", 1)[-1] for t in rec.candidates["bad"].regressions] == [
        "test_half"
    ]
    assert len(rec.candidates["broken"].regressions) == 2  # the module no longer imports
    assert rec.candidates["stale"].status == "no-apply"
    assert rec.regressions_of("stale") is None and rec.regressions_of("good") == 0


def test_changed_lines_and_the_definitions_they_touch():
    from codemonkeys.diffs import changed_old_lines
    from codemonkeys.selection.regression_discovery import touched_definitions

    original = (
        "import os\n\n\nclass Printer:\n    def _print_Mul(self, e):\n        return 1\n\n"
        "    def other(self):\n        return 2\n\n\ndef helper():\n    return 3\n"
    )
    section = (
        "--- a/p.py\n+++ b/p.py\n@@ -5,2 +5,2 @@ class Printer:\n"
        "     def _print_Mul(self, e):\n-        return 1\n+        return 4\n"
    )
    assert changed_old_lines(section) == {6}
    assert touched_definitions(original, {6}) == ["Printer", "_print_Mul"]
    assert touched_definitions(original, {13}) == ["helper"]
    assert touched_definitions(original, {1}) == []  # module level: the import evidence
    assert touched_definitions("def broken(:\n", {1}) == []


def test_discovery_by_the_names_a_diff_touches_and_by_importers(tmp_path):
    """A private helper module tested through the public module that imports it, and a
    differently named test file using the class the diff changes."""
    repo = {
        "pkg/__init__.py": "from .api import Client\n",
        "pkg/_helpers.py": "def _normalise(x):\n    return x\n",
        "pkg/api.py": "from ._helpers import _normalise\n\n\nclass Client:\n    pass\n",
        "pkg/tests/__init__.py": "",
        "pkg/tests/test_client.py": "from pkg.api import Client\n",  # imports an importer
        "tests/test_behaviour.py": "import pkg\n\npkg.Client()\n",  # uses the touched name
        "tests/test_unrelated.py": "import os\n",
    }
    make_git_repo(tmp_path, repo)
    found = discover_tests(
        sorted(repo), ["pkg/api.py"], git_grep(tmp_path), test_dirs=TEST_DIRS, limit=10,
        touched_names={"pkg/api.py": ["Client"]},
    )  # fmt: skip
    assert found["pkg/tests/test_client.py"] == "import+uses+package-dir"
    assert found["tests/test_behaviour.py"] == "uses+imports-importer"
    assert "tests/test_unrelated.py" not in found
    helper = discover_tests(
        sorted(repo), ["pkg/_helpers.py"], git_grep(tmp_path), test_dirs=TEST_DIRS, limit=10
    )
    assert helper["pkg/tests/test_client.py"] == "imports-importer+package-dir"


def test_a_plan_the_original_cannot_finish_is_cut_to_its_best_half(tmp_path):
    """Two related test files, the second too slow to finish within the timeout: both runs
    of the original time out, so the plan keeps its best half and runs again, and the
    candidate is compared on what finished."""
    from codemonkeys.sandbox import SandboxPool, SandboxSpec

    fast = "import unittest\n\nfrom calc.ops import double\n\n\nclass T(unittest.TestCase):\n    def test_double(self):\n        self.assertEqual(double(2), 4)\n"  # fmt: skip
    slow = fast.replace("test_double", "test_slow").replace(
        "        self.assertEqual", "        import time\n\n        time.sleep(60)\n        self.assertEqual"
    )  # fmt: skip
    repo = tmp_path / "repo"
    sha = make_git_repo(
        repo,
        {"calc/__init__.py": "", "calc/ops.py": "def double(x):\n    return 2 * x\n",
         "tests/__init__.py": "", "tests/test_ops.py": fast, "tests/test_ops_slow.py": slow},
    )  # fmt: skip
    patch = (
        "--- a/calc/ops.py\n+++ b/calc/ops.py\n@@ -1,2 +1,2 @@\n def double(x):\n"
        "-    return 2 * x\n+    return 3 * x\n"
    )
    config = SelectionConfig(
        regression_tests=["tests/test_ops.py", "tests/test_ops_slow.py"],
        regression_timeout_s=8,
    )
    pool = SandboxPool(SandboxSpec(kind="local", repo_path=repo, base_commit=sha), size=2)
    try:
        cache = ExecutionCache(pool.lease, timeout=60)
        rec = run_regression(
            [Candidate(id="wrong", patch=patch)], cache, config, test_dirs=TEST_DIRS, workers=1
        )
    finally:
        pool.close()
    assert rec.cut_files == ["tests/test_ops_slow.py"]
    assert rec.test_files == ["tests/test_ops.py"] and rec.baseline_passing == 1
    assert [t.rsplit(".", 1)[-1] for t in rec.candidates["wrong"].regressions] == ["test_double"]
