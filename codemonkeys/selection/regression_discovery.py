"""What the regression verifier runs: the repository's test files related to the edited
source files (``discover_tests``), the framework that runs them (``detect_framework``) and
the command (``build_command``); ``plan_regression`` does all three reading the repository in
a sandbox.

Discovery goes by path convention (``test_<module>.py``, ``<module>_test.py``, ``tests.py``
next to the module, ``<name>.test.js``, ``*_test.go`` in the package) and by import (test
files that import the edited module); never the dataset's FAIL_TO_PASS / PASS_TO_PASS / test
patch: those are gold. ``selection.regression_tests`` replaces the discovery;
``selection.regression_command`` replaces the runner. Frameworks: Django's
``tests/runtests.py``, sympy's ``bin/test``, pytest when importable in the sandbox (JUnit
XML via ``--junitxml``), ``unittest`` otherwise, ``go test -json`` for Go packages, ``npm
test`` for a ``package.json`` with a test script (exit code only).
"""

from __future__ import annotations

import ast
import fnmatch
import re
import shlex
from collections.abc import Callable, Mapping, Sequence
from pathlib import PurePosixPath
from typing import Literal

from codemonkeys.selection.import_reach import (
    Grep,
    entry_drivers,
    import_pattern,
    module_name,
    reached_from,
    relative_import_pattern,
)
from codemonkeys.selection.patches import is_test_file
from codemonkeys.selection.repo_test_settings import RepoTestSettings

Framework = Literal["django", "sympy", "pytest", "unittest", "go", "npm", "custom", "none"]

OUT_DIR = ".codemonkeys-regression"
"""Where the runner's output and JUnit XML go, relative to the repo root: commands run as
an unprivileged user who cannot write our script directory, and a path inside the sandbox's
own checkout stays private to that sandbox (local sandboxes too); resets remove it."""
LOG_PATH = f"{OUT_DIR}/output.log"
JUNIT_PATH = f"{OUT_DIR}/junit.xml"


def _test_names_for(path: str) -> set[str]:
    p = PurePosixPath(path)
    stem = p.stem if p.stem != "__init__" else p.parent.name
    if p.suffix == ".py":
        return {f"test_{stem}.py", f"{stem}_test.py", f"tests_{stem}.py", f"test{stem}.py"}
    if p.suffix in (".js", ".ts", ".mjs", ".cjs", ".jsx", ".tsx"):
        return {f"{stem}.test{p.suffix}", f"{stem}.spec{p.suffix}"}
    if p.suffix == ".go":
        return {f"{stem}_test.go"}
    return set()


_DATA_DIRS = frozenset(
    {"roots", "fixtures", "example_scripts", "examples", "data", "testdata", "test_data",
     "functional", "input", "inputs", "regrtest_data", "snapshots"}
)  # fmt: skip
"""Directories of test *inputs* (sphinx's ``tests/roots/test-*``, pytest's
``testing/example_scripts``, pylint's ``tests/functional``): data a test file reads, not
test files the runner should be given."""


def matches_python_files(path: str, globs: Sequence[str]) -> bool:
    """pytest's ``python_files`` rule: a glob without ``/`` matches the file name, one with
    ``/`` the end of the path (``testing/*/*.py``)."""
    name = PurePosixPath(path).name
    return any(
        fnmatch.fnmatchcase(name, g) if "/" not in g else fnmatch.fnmatchcase("/" + path, "*/" + g)
        for g in globs
    )


def is_repo_test_file(
    path: str, test_dirs: Sequence[str], python_files: Sequence[str] = ()
) -> bool:
    """A file of tests (not a helper, fixture, conftest or test input): ``test_x.py``,
    ``x_test.py``, ``tests.py``, pylint's ``unittest_x.py``..., or what the repository's
    pytest ``python_files`` names (pytest's ``testing/*/*.py``); ``x.test.js``; ``x_test.go``."""
    p = PurePosixPath(path)
    if any(d in _DATA_DIRS or d.startswith("test-") for d in p.parts[:-1]):
        return False
    if p.suffix == ".py":
        return (
            p.name != "conftest.py"
            and "__" not in p.stem
            and (
                (is_test_file(path, test_dirs) and "test" in p.stem)
                or matches_python_files(path, python_files)
            )
        )
    if p.suffix == ".go":
        return p.name.endswith("_test.go")
    return bool(re.search(r"\.(test|spec)\.[cm]?[jt]sx?$", p.name))


def _closeness(a: str, b: str) -> int:
    """Shared leading directory components (bigger is closer)."""
    n = 0
    for x, y in zip(PurePosixPath(a).parent.parts, PurePosixPath(b).parent.parts, strict=False):
        if x != y:
            break
        n += 1
    return n


GrepCount = Callable[[str, Sequence[str]], dict[str, int]]
"""(extended regex, paths) -> matching lines per path that has any."""

WEIGHT = {"name": 4.0, "import": 3.0, "uses": 1.0, "name-part": 2.0, "imports-importer": 1.0,
          "cli": 1.5, "package-dir": 1.0, "package": 1.5}  # fmt: skip
"""Evidence per reason (the most a reason adds); a test file's rank is the sum of its
reasons' weights: ``uses`` adds up to 3 with how often the file names the touched
definitions, a ``name``/``name-part`` match outside the package's test directory counts
0.4 of it; a file needs ``MIN_EVIDENCE`` in all. ``cli``: the file drives a command-line
entry point that reaches the edited module (pylint's ``tests/test_self.py`` runs
``python -m pylint``)."""

MIN_EVIDENCE = 1.5
"""A test file needs more than being in the package's test directory to be run: on a
repository with one flat ``tests/`` that alone would pick every file."""

_GENERIC_NAMES = frozenset(
    {"main", "name", "value", "setup", "test", "self", "args", "data", "wrapper", "inner", "func",
     "decorator", "call", "result"}
)  # fmt: skip


def names_pattern(names: Sequence[str]) -> str:
    """An extended regex for any of ``names`` as a whole word."""
    return "\\b(" + "|".join(re.escape(n) for n in sorted(names)) + ")\\b"


def usable_names(names: Sequence[str]) -> list[str]:
    """Names specific enough to grep tests for: no dunders, not too short or generic (a
    capitalised class name may have three letters: sympy's ``Mod``, ``Add``)."""
    return sorted(
        n for n in set(names)
        if (len(n) >= 4 or (len(n) == 3 and n[0].isupper())) and not n.startswith("__")
        and n.lower() not in _GENERIC_NAMES
    )  # fmt: skip


def package_test_dir_files(src: str, tests: Sequence[str], test_dirs: Sequence[str]) -> list[str]:
    """The test files of the nearest level above ``src`` that has any: its test directories
    (``pkg/sub/tests/`` for ``pkg/sub/mod.py``, else ``pkg/tests/``..., else the root's
    ``tests/``) and the test files lying directly in it (a root ``test_requests.py``)."""
    parent = PurePosixPath(src).parent
    for level in [parent, *parent.parents]:
        base = "" if str(level) == "." else str(level) + "/"
        prefixes = tuple(base + d + "/" for d in test_dirs)
        found = [t for t in tests
                 if t.startswith(prefixes) or str(PurePosixPath(t).parent) == str(level)]  # fmt: skip
        if found:
            return found
    return []


def _words(stem: str) -> list[str]:
    return [w for w in re.split(r"[_\W]+", stem.lower()) if w and w not in ("test", "tests")]


def similar_names(module_stem: str, test_stem: str) -> bool:
    """A test file named after part of the module: ``test_sky_coord`` for
    ``sky_coordinate``, ``test_quantity_decorator`` for ``decorators``, ``test_indexes``
    for ``indexing`` (see ``_alike``)."""
    mod, test = _words(module_stem), _words(test_stem)
    if not mod or not test:
        return False
    joined_mod, joined_test = "_".join(mod), "_".join(test)
    if len(joined_test) >= 5 and joined_mod.startswith(joined_test):
        return True
    return any(_alike(a, b) for a in mod for b in test)


def _alike(a: str, b: str) -> bool:
    """Two words with a common start of at least 5 letters and 70% of the shorter one
    (``indexing`` and ``indexes``, ``decorators`` and ``decorator``)."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n >= 5 and n >= 0.7 * min(len(a), len(b))


class _Found:
    """Reasons, their weights and closeness per test file, filled by each kind of evidence."""

    def __init__(self) -> None:
        self.reasons: dict[str, dict[str, float]] = {}
        self.closeness: dict[str, int] = {}

    def add(self, test: str, reason: str, src: str, weight: float | None = None) -> None:
        got = self.reasons.setdefault(test, {})
        got[reason] = max(got.get(reason, 0.0), WEIGHT[reason] if weight is None else weight)
        self.closeness[test] = max(self.closeness.get(test, 0), _closeness(src, test))

    def order(self) -> list[str]:
        """Best first: the most evidence, then the closest directory, then the path; a file
        with less than ``MIN_EVIDENCE`` (only in the package's test directory) is left out."""

        def key(t: str) -> tuple:
            return (-sum(self.reasons[t].values()), -self.closeness.get(t, 0), t)

        return sorted(
            (t for t in self.reasons if sum(self.reasons[t].values()) >= MIN_EVIDENCE), key=key
        )


def _interleave(per_source: Sequence[_Found], limit: int) -> dict[str, str]:
    """Each edited file's best tests in turn (its first, then every other file's first,
    then the seconds...), so one heavily tested file does not crowd the others out; the
    reasons of a test found for several files are merged."""
    orders = [f.order() for f in per_source]
    chosen: list[str] = []
    for rank in range(max((len(o) for o in orders), default=0)):
        for o in orders:
            if rank < len(o) and o[rank] not in chosen:
                chosen.append(o[rank])
    labels = list(WEIGHT)
    out: dict[str, str] = {}
    for t in chosen[:limit]:
        reasons = {r for f in per_source for r in f.reasons.get(t, {})}
        out[t] = "+".join(sorted(reasons, key=labels.index))
    return out


def mirrors_package(src: str, test: str, test_dirs: Sequence[str]) -> bool:
    """The test's directories below its test directory name the source's packages (or the
    module): ``tests/config/test_utils.py`` mirrors ``pylint/config/utils.py``,
    ``tests/lint/test_utils.py`` does not (it tests ``pylint/lint/utils.py``)."""
    parts = PurePosixPath(test).parent.parts
    roots = [i for i, p in enumerate(parts) if p in test_dirs]
    below = parts[roots[-1] + 1 :] if roots else ()
    src_path = PurePosixPath(src)
    allowed = {d.strip("_") for d in src_path.parent.parts} | {src_path.stem.strip("_")}
    return all(d.strip("_") in allowed for d in below)


def _by_name(
    found: _Found, src: str, tests: Sequence[str], near: set[str], test_dirs: Sequence[str]
) -> None:
    names = _test_names_for(src)
    src_path = PurePosixPath(src)
    same_dir = src_path.parent
    stem = src_path.stem if src_path.stem != "__init__" else same_dir.name
    for t in tests:
        tp = PurePosixPath(t)
        home = (t in near and mirrors_package(src, t, test_dirs)) or tp.parent == same_dir
        share = 1.0 if home else 0.4
        if tp.name in names or (tp.name == "tests.py" and tp.parent == same_dir):
            found.add(t, "name", src, WEIGHT["name"] * share)
        elif tp.suffix == src_path.suffix == ".py" and (
            f"_{stem}_" in f"_{tp.stem}_" or similar_names(stem, tp.stem)
        ):
            found.add(t, "name-part", src, WEIGHT["name-part"] * share)  # test_ext_viewcode.py
        elif (
            len(same_dir.name) >= 5
            and tp.suffix == ".py"
            and f"_{same_dir.name}_" in f"_{tp.stem}_"
        ):
            found.add(t, "name-part", src, share / 2)  # the package's: test_ext_autodoc_x.py
        if src.endswith(".go") and t.endswith("_test.go") and tp.parent == same_dir:
            found.add(t, "package", src)  # Go: the package's own tests


def _by_import(
    found: _Found, src: str, py_tests: Sequence[str], py_sources: Sequence[str], grep: Grep
) -> None:
    """Tests importing the module, and tests importing a module that imports it (a private
    helper tested through the public module using it)."""
    module = module_name(src)
    if not module or not py_tests:
        return
    for t in grep(import_pattern(module), py_tests):
        found.add(t, "import", src)
    siblings = [f for f in py_sources if PurePosixPath(f).parent == PurePosixPath(src).parent]
    by = set(grep(import_pattern(module), py_sources)) | set(
        grep(relative_import_pattern(src), siblings)
    )
    importers = sorted({m for f in by if f != src and (m := module_name(f))})
    for i in range(0, len(importers), 20):  # keep each regex short
        alts = "|".join(f"({import_pattern(m)})" for m in importers[i : i + 20])
        for t in grep(alts, py_tests):
            found.add(t, "imports-importer", src)


def _by_use(
    found: _Found, src: str, names: Sequence[str], py_tests: Sequence[str], count: GrepCount
) -> None:
    """Tests naming the functions and classes the diff touches, weighted by how often."""
    if not names or not py_tests:
        return
    for t, n in count(names_pattern(names), py_tests).items():
        found.add(t, "uses", src, WEIGHT["uses"] * min(3.0, 1.0 + n / 10))


def discover_tests(
    files: Sequence[str],
    edited: Sequence[str],
    grep: Grep,
    *,
    test_dirs: Sequence[str],
    limit: int,
    touched_names: Mapping[str, Sequence[str]] | None = None,
    count: GrepCount | None = None,
    settings: RepoTestSettings | None = None,
) -> dict[str, str]:
    """Test files related to ``edited`` source files: ``{path: reason}``, best first, at
    most ``limit``. Reasons (``WEIGHT``), combined with ``+``: ``name`` (test_<module>.py
    and friends), ``import`` (imports the edited module), ``uses`` (names a function or
    class the diff touches, from ``touched_names``; ``count`` tells how often, else once),
    ``name-part`` (``test_ext_viewcode.py``, ``test_sky_coord.py``), ``imports-importer``
    (imports a module that imports the edited one), ``package-dir`` (in the package's
    nearest test directory), ``package`` (Go: the package's tests), ``cli`` (drives an
    entry point reaching it). ``settings``: the repository's ``python_files`` (under its
    ``testpaths``) also name test files; its entry points give ``cli``. Per edited file, best
    first: the most evidence, then the closest directory; the files take turns."""
    settings = settings or RepoTestSettings()
    roots = tuple(p.strip("/") + "/" for p in settings.testpaths if p.strip("/"))
    tests = [f for f in files if is_repo_test_file(
        f, test_dirs, settings.python_files if not roots or f.startswith(roots) else ())]  # fmt: skip
    py_tests = [t for t in tests if t.endswith(".py")]
    py_sources = [f for f in files if f.endswith(".py") and not is_test_file(f, test_dirs)]
    drivers = entry_drivers(py_tests, files, settings.entry_points, grep)
    counter = count or (lambda regex, paths: dict.fromkeys(grep(regex, paths), 1))
    per_source: list[_Found] = []
    for src in (e for e in edited if not is_test_file(e, test_dirs)):
        found = _Found()
        per_source.append(found)
        near = (
            set(package_test_dir_files(src, py_tests, test_dirs)) if src.endswith(".py") else set()
        )
        _by_name(found, src, tests, near, test_dirs)
        _by_import(found, src, py_tests, py_sources, grep)
        _by_use(found, src, usable_names((touched_names or {}).get(src, ())), py_tests, counter)
        for t in near:
            found.add(t, "package-dir", src)
        for entry in reached_from(src, set(drivers), py_sources, grep) if drivers else ():
            for t in drivers[entry]:
                found.add(t, "cli", src)
    return _interleave(per_source, limit)


def touched_definitions(original: str, lines: set[int]) -> list[str]:
    """Names of the functions and classes (with their enclosing classes) whose source,
    decorators included, holds one of the original file's ``lines`` (what a diff changes)."""
    try:
        tree = ast.parse(original)
    except (SyntaxError, ValueError):
        return []
    names: list[str] = []

    def visit(node: ast.AST, enclosing: list[str]) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                start = min([child.lineno] + [d.lineno for d in child.decorator_list])
                end = child.end_lineno or child.lineno
                if any(start <= n <= end for n in lines):
                    names.extend([*enclosing, child.name])
                    visit(child, [*enclosing, child.name])
            else:
                visit(child, enclosing)

    visit(tree, [])
    return list(dict.fromkeys(names))


def detect_framework(
    files: Sequence[str], test_files: Sequence[str], has_pytest: bool
) -> Framework:
    present = set(files)
    if not test_files:
        return "none"
    if all(t.endswith(".go") for t in test_files):
        return "go"
    if all(not t.endswith(".py") for t in test_files):
        return "npm" if "package.json" in present else "none"
    if "tests/runtests.py" in present and any(f.startswith("django/") for f in files):
        return "django"
    if "bin/test" in present and any(f.startswith("sympy/") for f in files):
        return "sympy"
    return "pytest" if has_pytest else "unittest"


def _dotted(path: str, strip: str = "") -> str:
    p = PurePosixPath(path).with_suffix("")
    parts = list(p.parts)
    if strip and parts and parts[0] == strip:
        parts = parts[1:]
    return ".".join(parts)


def _pytest_command(files: str, settings: RepoTestSettings | None) -> str:
    """pytest as the repository runs it (its test environment, interpreter and pytest
    options from ``settings``), with our report options."""
    s = settings or RepoTestSettings()
    env = "".join(f"{k}={shlex.quote(v)} " for k, v in sorted(s.env.items()))
    python = " ".join(["python", *map(shlex.quote, s.interpreter_options)])
    extra = "".join(shlex.quote(o) + " " for o in s.pytest_options)
    return f"{env}{python} -m pytest -rA -p no:cacheprovider {extra}--junitxml={JUNIT_PATH} {files}"


def build_command(
    framework: Framework, test_files: Sequence[str], settings: RepoTestSettings | None = None
) -> str:
    """The shell command (from the repo root) that runs ``test_files`` (pytest the way the
    repository's ``settings`` say)."""
    q = " ".join(shlex.quote(t) for t in test_files)
    if framework == "pytest":
        return _pytest_command(q, settings)
    if framework == "unittest":
        mods = " ".join(shlex.quote(_dotted(t)) for t in test_files)
        return f"python -m unittest -v {mods}"
    if framework == "django":
        labels = " ".join(shlex.quote(_dotted(t, "tests")) for t in test_files)
        return f"python tests/runtests.py --verbosity 2 --parallel 1 {labels}"
    if framework == "sympy":
        return f"python bin/test -C --verbose {q}"
    if framework == "go":
        pkgs = sorted({"./" + str(PurePosixPath(t).parent) for t in test_files})
        return "go test -json " + " ".join(shlex.quote(p) for p in pkgs)
    if framework == "npm":
        return "npm test --silent"
    return ""


def custom_command(template: str, test_files: Sequence[str]) -> str:
    """``selection.regression_command`` with ``{tests}`` and ``{junit}`` filled in."""
    return template.replace("{tests}", " ".join(shlex.quote(t) for t in test_files)).replace(
        "{junit}", JUNIT_PATH
    )
