"""The repository's own test settings (pytest ini options, tox's test environment, entry
points) and what discovery and the regression command do with them, on real git
repositories and a real pytest run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from codemonkeys.selection.regression_discovery import (
    build_command,
    discover_tests,
    is_repo_test_file,
    mirrors_package,
    usable_names,
)
from codemonkeys.selection.repo_test_settings import (
    RepoTestSettings,
    known_pytest_options,
    read_test_settings,
)
from tests.conftest import make_git_repo
from tests.unit.test_regression import TEST_DIRS, git_grep

# sphinx 3.5's tox.ini and setup.cfg, cut to what matters
SPHINX_TOX = """[tox]
envlist = docs,flake8,py{35,36,37,38,39}

[testenv]
usedevelop = True
extras =
    test
setenv =
    PYTHONWARNINGS = all,ignore::ImportWarning:importlib._bootstrap_external
    PYTEST_ADDOPTS = {env:PYTEST_ADDOPTS:} --color yes
commands=
    python -X dev -m pytest --durations 25 {posargs}

[testenv:flake8]
commands =
    flake8 {posargs}
"""
SPHINX_SETUP_CFG = """[options.entry_points]
console_scripts =
    sphinx-build = sphinx.cmd.build:main

[tool:pytest]
filterwarnings =
    all
testpaths = tests
"""
# pylint 2.15's: the command names its test directory and a plugin option
PYLINT_TOX = """[testenv]
setenv =
    COVERAGE_FILE = {toxinidir}/.coverage.{envname}
commands =
    ; Run tests, ensuring all benchmark tests do not run
    pytest --benchmark-disable {toxinidir}/tests/ {posargs:}
"""
# pytest 5.0's: its own test files are named by python_files
PYTEST_TOX = """[pytest]
addopts = -ra -p pytester --strict-markers
python_files = test_*.py *_test.py testing/*/*.py
testpaths = testing
"""


def test_settings_from_tox_and_setup_cfg():
    files = {"tox.ini": SPHINX_TOX, "setup.cfg": SPHINX_SETUP_CFG}
    s = read_test_settings(files.get, set(files))
    assert s.env == {
        "PYTHONWARNINGS": "all,ignore::ImportWarning:importlib._bootstrap_external"
    }  # PYTEST_ADDOPTS is ours to set (colour is reporting)
    assert s.interpreter_options == ["-X", "dev"]
    assert s.pytest_options == ["--durations", "25"]
    assert s.testpaths == ["tests"] and s.python_files == []
    assert s.entry_points == {"sphinx-build": "sphinx.cmd.build:main"}

    pylint = read_test_settings({"tox.ini": PYLINT_TOX}.get, {"tox.ini"})
    assert pylint.pytest_options == ["--benchmark-disable"]  # not the tests/ path
    assert pylint.env == {}  # {envname} cannot be resolved: left out

    pytest_repo = read_test_settings({"tox.ini": PYTEST_TOX}.get, {"tox.ini"})
    assert pytest_repo.python_files == ["test_*.py", "*_test.py", "testing/*/*.py"]
    assert pytest_repo.testpaths == ["testing"]


def test_pytest_reads_pytest_ini_first_and_bad_files_lose_nothing():
    files = {
        "pytest.ini": "[pytest]\npython_files = check_*.py\n",
        "pyproject.toml": '[tool.pytest.ini_options]\npython_files = ["spec_*.py"]\n',
        "setup.cfg": "[tool:pytest\nbroken",  # unparsable: ignored
    }
    assert read_test_settings(files.get, set(files)).python_files == ["check_*.py"]
    del files["pytest.ini"]
    assert read_test_settings(files.get, set(files)).python_files == ["spec_*.py"]
    # a file not in the listing is not read
    assert read_test_settings(files.get, set()).python_files == []
    bad = {"pyproject.toml": "[tool.pytest.ini_options\n", "tox.ini": "no section\n"}
    assert read_test_settings(bad.get, set(bad)) == RepoTestSettings()
    odd = {"pyproject.toml": 'tool = 1\nproject = "x"\n'}  # valid TOML, not tables
    assert read_test_settings(odd.get, set(odd)) == RepoTestSettings()


def test_options_the_installed_pytest_lacks_are_dropped():
    """The real ``pytest --help`` of this environment (no pytest-benchmark here)."""
    pytest_help = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    s = RepoTestSettings(pytest_options=["--benchmark-disable", "--durations", "25", "-p", "xdist"])
    assert known_pytest_options(s, pytest_help).pytest_options == [
        "--durations",
        "25",
        "-p",
        "xdist",
    ]


def test_the_command_runs_pytest_with_the_repositorys_test_environment(tmp_path: Path):
    """A repository whose tests need what its tox environment sets (a settings module, as
    Django projects do): the plain command fails them, the repository's passes them."""
    make_git_repo(
        tmp_path,
        {
            "tox.ini": "[testenv]\nsetenv =\n    APP_SETTINGS = app.test_settings\n"
            "commands =\n    python -W error::ResourceWarning -m pytest -q {posargs}\n",
            "app/__init__.py": "import os\nSETTINGS = os.environ['APP_SETTINGS']\n",
            "tests/test_app.py": "import app\n\ndef test_settings():\n"
            "    assert app.SETTINGS == 'app.test_settings'\n",
        },
    )
    settings = read_test_settings(lambda p: (tmp_path / p).read_text(), {"tox.ini"})
    assert settings.interpreter_options == ["-W", "error::ResourceWarning"]

    def passes(command: str) -> bool:
        bin_dir = Path(sys.executable).parent
        env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "PYTHONPATH": str(tmp_path)}
        (tmp_path / ".codemonkeys-regression").mkdir(exist_ok=True)
        proc = subprocess.run(command, shell=True, cwd=tmp_path, env=env, capture_output=True)
        return proc.returncode == 0

    assert not passes(build_command("pytest", ["tests/test_app.py"]))
    assert passes(build_command("pytest", ["tests/test_app.py"], settings))


def test_discovery_honours_python_files_under_testpaths(tmp_path: Path):
    repo = {
        "src/tool/compat.py": "def getfuncargnames(f):\n    return ()\n",
        "testing/python/integration.py": "from tool.compat import getfuncargnames\n",
        "docs/python/integration.py": "from tool.compat import getfuncargnames\n",
    }
    make_git_repo(tmp_path, repo)
    args = (sorted(repo), ["src/tool/compat.py"], git_grep(tmp_path))
    assert discover_tests(*args, test_dirs=TEST_DIRS, limit=8) == {}
    settings = RepoTestSettings(python_files=["test_*.py", "*/*/*.py"], testpaths=["testing"])
    found = discover_tests(*args, test_dirs=TEST_DIRS, limit=8, settings=settings)
    assert found == {"testing/python/integration.py": "import+package-dir"}
    assert not is_repo_test_file("testing/python/conftest.py", TEST_DIRS, ["*.py"])


CLI_REPO = {
    "setup.cfg": "[options.entry_points]\nconsole_scripts =\n    tool = tool:run_tool\n",
    "tool/__init__.py": "def run_tool():\n    from tool.lint import Run\n    Run()\n",
    "tool/__main__.py": "from tool import run_tool\n\nrun_tool()\n",
    "tool/lint/__init__.py": "from .runner import Run\n",
    "tool/lint/runner.py": "from tool.lint.expand import expand\n",
    "tool/lint/expand.py": "def expand(paths):\n    return paths\n",
    "tool/unused.py": "def helper():\n    return 1\n",
    "tests/test_self.py": "import subprocess, sys\n\ndef test_version():\n"
    '    subprocess.check_call([sys.executable, "-m", "tool", "--version"])\n',
    "tests/test_runners.py": "from tool import run_tool\n",
    "tests/test_other.py": "def test_nothing():\n    pass\n",
}


def test_tests_driving_the_command_line_guard_what_it_reaches(tmp_path: Path):
    make_git_repo(tmp_path, CLI_REPO)
    files = sorted(CLI_REPO)
    settings = read_test_settings(lambda p: CLI_REPO.get(p), set(files))

    def found(edited: str) -> dict[str, str]:
        return discover_tests(
            files, [edited], git_grep(tmp_path), test_dirs=TEST_DIRS, limit=8, settings=settings
        )

    # expand.py <- runner.py <- tool.lint (relative import) <- tool (deferred) <- __main__
    assert found("tool/lint/expand.py") == {
        "tests/test_runners.py": "cli+package-dir",
        "tests/test_self.py": "cli+package-dir",
    }
    assert found("tool/unused.py") == {}  # nothing reaches it from the command line


def test_a_namesake_in_another_packages_test_directory_is_weaker_evidence():
    assert mirrors_package("pylint/config/utils.py", "tests/config/test_utils.py", TEST_DIRS)
    assert not mirrors_package("pylint/config/utils.py", "tests/lint/test_utils.py", TEST_DIRS)
    assert mirrors_package("src/_pytest/_code/code.py", "testing/code/test_code.py", TEST_DIRS)
    assert mirrors_package("sympy/core/mod.py", "sympy/core/tests/test_arit.py", TEST_DIRS)
    files = ["pkg/config/utils.py", "tests/lint/test_utils.py", "tests/config/test_utils.py"]
    found = discover_tests(
        files, ["pkg/config/utils.py"], lambda r, p: [], test_dirs=TEST_DIRS, limit=1
    )
    assert list(found) == ["tests/config/test_utils.py"]


def test_a_short_class_name_is_specific_enough_to_look_for():
    """sympy's ``Mod`` is tested wherever a test names it; a three-letter lower-case name
    (``add``) would match too much."""
    assert usable_names(["Mod", "add", "__init__", "main", "doit"]) == ["Mod", "doit"]
