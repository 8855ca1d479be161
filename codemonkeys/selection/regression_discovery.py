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

import re
import shlex
from collections.abc import Callable, Sequence
from pathlib import PurePosixPath
from typing import Literal

from pydantic import BaseModel

from codemonkeys.candidates import Candidate
from codemonkeys.config import SelectionConfig
from codemonkeys.diffs import touched_files
from codemonkeys.sandbox.base import Sandbox
from codemonkeys.selection.patches import is_test_file

Framework = Literal["django", "sympy", "pytest", "unittest", "go", "npm", "custom", "none"]

OUT_DIR = ".codemonkeys-regression"
"""Where the runner's output and JUnit XML go, relative to the repo root: commands run as
an unprivileged user who cannot write our script directory, and a path inside the sandbox's
own checkout stays private to that sandbox (local sandboxes too); resets remove it."""
LOG_PATH = f"{OUT_DIR}/output.log"
JUNIT_PATH = f"{OUT_DIR}/junit.xml"


def _module_name(path: str) -> str | None:
    """``pkg/sub/mod.py`` -> ``pkg.sub.mod``; ``pkg/__init__.py`` -> ``pkg``; a leading
    ``src/`` or ``lib/`` is dropped."""
    p = PurePosixPath(path)
    if p.suffix != ".py":
        return None
    parts = list(p.with_suffix("").parts)
    if parts and parts[0] in ("src", "lib"):
        parts = parts[1:]
    if parts and parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts) if parts and all(x.isidentifier() for x in parts) else None


def import_pattern(module: str) -> str:
    """An extended regex (``git grep -E``) for lines importing ``module``."""
    parts = module.split(".")
    dotted = re.escape(module).replace("\\.", "\\.")
    alts = [
        f"import[[:space:]]+{dotted}([^[:alnum:]_]|$)",
        f"from[[:space:]]+{dotted}[[:space:]]+import",
    ]
    if len(parts) > 1:
        parent = re.escape(".".join(parts[:-1]))
        alts.append(f"from[[:space:]]+{parent}[[:space:]]+import[^#]*\\b{parts[-1]}\\b")
    return "|".join(f"({a})" for a in alts)


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


def is_repo_test_file(path: str, test_dirs: Sequence[str]) -> bool:
    """A file of tests (not a helper, fixture or conftest): ``test_x.py``, ``x_test.py``,
    ``tests.py``, pylint's ``unittest_x.py``...; ``x.test.js``; ``x_test.go``."""
    p = PurePosixPath(path)
    if p.suffix == ".py":
        return (
            is_test_file(path, test_dirs)
            and "test" in p.stem
            and p.name != "conftest.py"
            and "__" not in p.stem
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


Grep = Callable[[str, Sequence[str]], list[str]]
"""(extended regex, paths) -> the paths whose text matches."""


def discover_tests(
    files: Sequence[str],
    edited: Sequence[str],
    grep: Grep,
    *,
    test_dirs: Sequence[str],
    limit: int,
) -> dict[str, str]:
    """Test files related to ``edited`` source files: ``{path: reason}``, best first, at
    most ``limit``. Reasons: ``name`` (test_<module>.py and friends), ``name-part`` (the
    module's name is a part of the test file's, e.g. ``test_ext_viewcode.py``), ``import``
    (imports the edited module), ``package`` (Go: the package's tests), combined with ``+``;
    best first: name over import over the rest, then the closest directory."""
    tests = [f for f in files if is_repo_test_file(f, test_dirs)]
    sources = [e for e in edited if not is_test_file(e, test_dirs)]
    reasons: dict[str, set[str]] = {}
    closeness: dict[str, int] = {}
    for src in sources:
        names = _test_names_for(src)
        src_path = PurePosixPath(src)
        same_dir = src_path.parent
        stem = src_path.stem if src_path.stem != "__init__" else same_dir.name
        for t in tests:
            tp = PurePosixPath(t)
            if tp.name in names or (tp.name == "tests.py" and tp.parent == same_dir):
                reasons.setdefault(t, set()).add("name")
            elif tp.suffix == src_path.suffix == ".py" and f"_{stem}_" in f"_{tp.stem}_":
                reasons.setdefault(t, set()).add("name-part")  # test_ext_viewcode.py
            else:
                continue
            closeness[t] = max(closeness.get(t, 0), _closeness(src, t))
        module = _module_name(src)
        py_tests = [t for t in tests if t.endswith(".py")]
        if module and py_tests:
            for t in grep(import_pattern(module), py_tests):
                reasons.setdefault(t, set()).add("import")
                closeness[t] = max(closeness.get(t, 0), _closeness(src, t))
        if src.endswith(".go"):  # Go: the package's own tests
            for t in tests:
                if t.endswith("_test.go") and PurePosixPath(t).parent == same_dir:
                    reasons.setdefault(t, set()).add("package")
    weight = {"name": 3, "import": 2, "name-part": 1, "package": 1}
    order = sorted(
        reasons, key=lambda t: (-sum(weight[r] for r in reasons[t]), -closeness.get(t, 0), t)
    )
    labels = list(weight)
    return {t: "+".join(sorted(reasons[t], key=labels.index)) for t in order[:limit]}


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


def build_command(framework: Framework, test_files: Sequence[str]) -> str:
    """The shell command (from the repo root) that runs ``test_files``."""
    q = " ".join(shlex.quote(t) for t in test_files)
    if framework == "pytest":
        return f"python -m pytest -rA -p no:cacheprovider --junitxml={JUNIT_PATH} {q}"
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


# -- the plan for one problem ------------------------------------------------------------
def _sandbox_grep(sandbox: Sandbox) -> Grep:
    def grep(regex: str, paths: Sequence[str]) -> list[str]:
        found: list[str] = []
        for i in range(0, len(paths), 200):  # keep each command line short
            chunk = " ".join(shlex.quote(p) for p in paths[i : i + 200])
            res = sandbox.run(f"git grep -l -E {shlex.quote(regex)} -- {chunk}", timeout=120)
            found += [ln.strip() for ln in res.output.splitlines() if ln.strip() in paths]
        return found

    return grep


class Plan(BaseModel):
    source: Literal["discovered", "config", "none"]
    framework: str
    command: str
    test_files: list[str]
    reasons: dict[str, str]
    junit: bool


def plan_regression(
    sandbox: Sandbox,
    candidates: Sequence[Candidate],
    config: SelectionConfig,
    test_dirs: Sequence[str],
) -> Plan:
    """Choose the test files and the command, reading the repository in ``sandbox``."""
    listing = sandbox.run("git ls-files", timeout=120)
    files = [ln.strip() for ln in listing.output.splitlines() if ln.strip()]
    if config.regression_tests:
        tests = list(config.regression_tests)
        reasons = {t: "config" for t in tests}
        source: Literal["discovered", "config", "none"] = "config"
    else:
        edited: list[str] = []
        for c in candidates:
            edited += [p for p in touched_files(c.patch) if p not in edited]
        reasons = discover_tests(
            files,
            edited,
            _sandbox_grep(sandbox),
            test_dirs=test_dirs,
            limit=config.regression_max_test_files,
        )
        tests = list(reasons)
        source = "discovered" if tests else "none"
    if config.regression_command:
        command = custom_command(config.regression_command, tests)
        return Plan(source="config" if not tests else source, framework="custom", command=command,
                    test_files=tests, reasons=reasons, junit="{junit}" in config.regression_command)  # fmt: skip
    has_pytest = (
        any(t.endswith(".py") for t in tests)
        and sandbox.run("python -c 'import pytest'", timeout=60).exit_code == 0
    )
    framework = detect_framework(files, tests, has_pytest)
    return Plan(
        source=source,
        framework=framework,
        command=build_command(framework, tests),
        test_files=tests,
        reasons=reasons,
        junit=framework == "pytest",
    )
