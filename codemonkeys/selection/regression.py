"""The regression verifier: the repository's own tests, run on the original code and on
every candidate. A correct fix should not break tests that passed before it.

Steps for one problem (``run_regression``):

1. **Discovery** (``discover_tests``): the repository's test files related to the source
   files the candidates edit, by path convention (``test_<module>.py``, ``<module>_test.py``,
   ``tests.py`` next to the module, ``<name>.test.js``, ``*_test.go`` in the package) and by
   import (test files that import the edited module). Never the dataset's FAIL_TO_PASS /
   PASS_TO_PASS / test patch: those are gold. ``selection.regression_tests`` replaces the
   discovery; ``selection.regression_command`` replaces the runner.
2. **Framework** (``detect_framework``): Django's ``tests/runtests.py``, sympy's
   ``bin/test``, pytest when importable in the sandbox (JUnit XML via ``--junitxml``),
   ``unittest`` otherwise, ``go test -json`` for Go packages, ``npm test`` for a
   ``package.json`` with a test script (exit code only).
3. **Runs** inside the problem's sandboxes, each (patch, command) once through the
   problem's ``ExecutionCache``, within ``selection.regression_budget_s``: the original
   code twice, then each distinct candidate once.
4. **Outcomes** per test (``parse_outcomes``): JUnit XML where the runner wrote it, the
   runner's own report otherwise (unittest/Django verbose lines, sympy's report, pytest's
   ``-rA`` summary, ``go test -json``), the exit code as the last resort.
5. **Verdicts**: per candidate, the tests that passed on *both* runs of the original and
   fail (or error) with the candidate. A test whose two original runs differ is flaky and
   never counts.
"""

from __future__ import annotations

import json
import logging
import re
import shlex
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import PurePosixPath
from typing import Any, Literal

from pydantic import BaseModel, Field

from codemonkeys.candidates import Candidate
from codemonkeys.config import SelectionConfig
from codemonkeys.diffs import touched_files
from codemonkeys.execution import ExecutionCache, patch_digest
from codemonkeys.sandbox.base import Sandbox
from codemonkeys.selection.patches import is_test_file

log = logging.getLogger(__name__)

Outcome = Literal["passed", "failed", "error", "skipped"]
FAILING: tuple[str, ...] = ("failed", "error")
Framework = Literal["django", "sympy", "pytest", "unittest", "go", "npm", "custom", "none"]

OUT_DIR = ".codemonkeys-regression"
"""Where the runner's output and JUnit XML go, relative to the repo root: commands run as
an unprivileged user who cannot write our script directory, and a path inside the sandbox's
own checkout stays private to that sandbox (local sandboxes too); resets remove it."""
LOG_PATH = f"{OUT_DIR}/output.log"
JUNIT_PATH = f"{OUT_DIR}/junit.xml"
SUITE = "<suite>"
"""Test id used when only the exit code tells the outcome."""
_KEEP_OUTPUT_CHARS = 2000
_MAX_LOG_BYTES = 4_000_000


# -- records -------------------------------------------------------------------------------
class SuiteRun(BaseModel):
    """One run of the regression command on one patch (None = the original code)."""

    patch_applied: bool = True
    exit_code: int | None = None
    timed_out: bool = False
    seconds: float = 0.0
    parser: str = ""
    """Which parser gave ``outcomes``: junit, unittest, sympy, pytest-report, go-json,
    exit-code; empty when the patch did not apply or the sandbox failed."""
    outcomes: dict[str, str] = Field(default_factory=dict)
    """Test id -> passed / failed / error / skipped."""
    error: str = ""
    """Patch or sandbox error."""
    output_tail: str = ""


class CandidateRegressions(BaseModel):
    status: Literal["ok", "not-run", "no-apply", "error"]
    """ok: compared with the original; not-run: the budget ran out first (no evidence);
    no-apply / error: the patch did not apply / the sandbox failed (no evidence)."""
    regressions: list[str] = Field(default_factory=list)
    """Tests that passed on both original runs and fail or error with the candidate."""
    run: SuiteRun | None = None


class RegressionRecord(BaseModel):
    """What the regression verifier ran and found, saved inside ``selection.json``."""

    source: Literal["discovered", "config", "none"] = "none"
    framework: str = "none"
    command: str = ""
    test_files: list[str] = Field(default_factory=list)
    reasons: dict[str, str] = Field(default_factory=dict)
    """Why each test file was chosen (name / import / config)."""
    original_runs: list[SuiteRun] = Field(default_factory=list)
    flaky: list[str] = Field(default_factory=list)
    baseline_passing: int = 0
    """Tests that passed on both runs of the original code."""
    candidates: dict[str, CandidateRegressions] = Field(default_factory=dict)
    skipped_reason: str = ""
    """Why nothing ran (no related tests, the original run failed to produce outcomes...)."""
    seconds: float = 0.0

    def regressions_of(self, candidate_id: str) -> int | None:
        """Number of regressions, or None when there is no evidence for the candidate."""
        c = self.candidates.get(candidate_id)
        if c is None or c.status != "ok":
            return None
        return len(c.regressions)


# -- discovery -----------------------------------------------------------------------------
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


# -- framework and command -----------------------------------------------------------------
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


# -- outcome parsing -----------------------------------------------------------------------
def parse_junit(xml_text: str) -> dict[str, str]:
    """JUnit XML (pytest ``--junitxml``, most runners) -> {``classname.name``: outcome}."""
    root = ET.fromstring(xml_text)
    out: dict[str, str] = {}
    for case in root.iter("testcase"):
        name = case.get("name", "")
        cls = case.get("classname", "")
        tid = f"{cls}.{name}" if cls else name  # the dotted id unittest prints too
        tags = {child.tag for child in case}
        if "error" in tags:
            status = "error"
        elif "failure" in tags:
            status = "failed"
        elif "skipped" in tags:
            status = "skipped"
        else:
            status = "passed"
        out[tid] = _worse(out.get(tid), status)
    return out


_SEVERITY = {"skipped": 0, "passed": 1, "failed": 2, "error": 3}


def _worse(old: str | None, new: str) -> str:
    """Two results for one id (e.g. a pytest teardown error): the worse one counts."""
    if old is None:
        return new
    return old if _SEVERITY[old] >= _SEVERITY[new] else new


_UNITTEST_LINE = re.compile(
    r"^(?P<name>\w+) \((?P<cls>[\w.]+)\)(?:\n.*?)? \.\.\. ?(?P<status>ok|FAIL|ERROR|skipped.*|expected failure|unexpected success)\s*$",
    re.M,
)
_UNITTEST_STATUS = {
    "ok": "passed",
    "FAIL": "failed",
    "ERROR": "error",
    "expected failure": "passed",
}


def parse_unittest(output: str) -> dict[str, str]:
    """``unittest -v`` / Django ``--verbosity 2`` lines: ``test_x (mod.Class) ... ok``."""
    out: dict[str, str] = {}
    for m in _UNITTEST_LINE.finditer(output):
        raw = m.group("status")
        status = "skipped" if raw.startswith("skipped") else _UNITTEST_STATUS.get(raw, "failed")
        cls, name = m.group("cls"), m.group("name")
        tid = (
            cls if cls.endswith(f".{name}") else f"{cls}.{name}"
        )  # Python >= 3.11 prints the full id
        out[tid] = _worse(out.get(tid), status)
    return out


_SYMPY_FILE = re.compile(r"^(?P<file>\S+\.py)\[\d+\]", re.M)
_SYMPY_TEST = re.compile(r"^(?P<name>test_\w+) (?P<status>ok|F|E|f|X|s|w|Skipped.*)\s*$", re.M)


def parse_sympy(output: str) -> dict[str, str]:
    """sympy ``bin/test --verbose``: a ``path.py[N]`` header, then ``test_x ok`` / ``F`` / ``E``."""
    out: dict[str, str] = {}
    current = ""
    marks = sorted(
        [(m.start(), "file", m.group("file")) for m in _SYMPY_FILE.finditer(output)]
        + [(m.start(), "test", m) for m in _SYMPY_TEST.finditer(output)],
        key=lambda x: x[0],
    )
    for _, kind, val in marks:
        if kind == "file":
            current = str(val)
            continue
        m = val  # type: ignore[assignment]
        raw = m.group("status")  # type: ignore[union-attr]
        status = {"ok": "passed", "F": "failed", "E": "error", "f": "passed", "X": "failed"}.get(
            raw, "skipped"
        )
        out[f"{current}::{m.group('name')}"] = status  # type: ignore[union-attr]
    return out


_PYTEST_SUMMARY = re.compile(r"^(PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS) (\S+::\S+)", re.M)


def parse_pytest_report(output: str) -> dict[str, str]:
    """pytest's ``-rA`` short summary: ``PASSED path::test``."""
    table = {"PASSED": "passed", "FAILED": "failed", "ERROR": "error", "SKIPPED": "skipped",
             "XFAIL": "passed", "XPASS": "failed"}  # fmt: skip
    out: dict[str, str] = {}
    for m in _PYTEST_SUMMARY.finditer(output):
        out[m.group(2)] = _worse(out.get(m.group(2)), table[m.group(1)])
    return out


def parse_go_json(output: str) -> dict[str, str]:
    """``go test -json`` events: the final pass/fail/skip action of each test."""
    out: dict[str, str] = {}
    for line in output.splitlines():
        if not line.startswith("{"):
            continue
        try:
            ev = json.loads(line)
        except ValueError:
            continue
        if ev.get("Test") and ev.get("Action") in ("pass", "fail", "skip"):
            status = {"pass": "passed", "fail": "failed", "skip": "skipped"}[ev["Action"]]
            out[f"{ev.get('Package', '')}::{ev['Test']}"] = status
    return out


TEXT_PARSERS: list[tuple[str, Callable[[str], dict[str, str]]]] = [
    ("pytest-report", parse_pytest_report),
    ("unittest", parse_unittest),
    ("sympy", parse_sympy),
    ("go-json", parse_go_json),
]


def parse_outcomes(
    output: str, junit_xml: str | None, exit_code: int | None
) -> tuple[str, dict[str, str]]:
    """(parser name, per-test outcomes): JUnit XML when present and readable, else the
    first runner report found in the output, else the exit code as one ``<suite>`` test."""
    if junit_xml:
        try:
            found = parse_junit(junit_xml)
        except ET.ParseError as e:
            log.warning("unreadable JUnit XML (%s); falling back to the runner's report", e)
        else:
            if found:
                return "junit", found
    for name, parser in TEXT_PARSERS:
        found = parser(output)
        if found:
            return name, found
    return "exit-code", {SUITE: "passed" if exit_code == 0 else "failed"}


# -- verdicts ------------------------------------------------------------------------------
def flaky_tests(first: dict[str, str], second: dict[str, str]) -> list[str]:
    """Tests whose outcome differs between two runs of the same code."""
    return sorted(t for t in set(first) | set(second) if first.get(t) != second.get(t))


def baseline(first: dict[str, str], second: dict[str, str]) -> set[str]:
    """Tests that passed on both runs of the original code."""
    return {t for t, s in first.items() if s == "passed" and second.get(t) == "passed"}


def regressions(passing: set[str], candidate: SuiteRun) -> list[str]:
    """Baseline-passing tests that fail or error with the candidate. A baseline test the
    candidate's run does not report at all counts too when that run failed (exit != 0): an
    import or collection error stopped it (with only an exit code left, every baseline test
    is broken). Missing from a successful run, it is not counted."""
    if candidate.parser == "exit-code" and SUITE not in passing:
        return sorted(passing) if candidate.exit_code != 0 else []
    failed_run = candidate.exit_code != 0
    return sorted(
        t
        for t in passing
        if candidate.outcomes.get(t) in FAILING or (failed_run and t not in candidate.outcomes)
    )


# -- running -------------------------------------------------------------------------------
def run_suite(
    sandbox: Sandbox, patch: str | None, command: str, timeout: float, junit: bool
) -> SuiteRun:
    """Apply ``patch`` on a clean sandbox, run ``command`` from the repo root and parse the
    outcomes (the runner's output goes to a file, so no output cap cuts the report)."""
    if patch and patch.strip():
        applied = sandbox.apply_patch(patch)
        if not applied.ok:
            return SuiteRun(patch_applied=False, error=applied.error[-_KEEP_OUTPUT_CHARS:])
    root = sandbox.workdir.rstrip("/")
    res = sandbox.run(
        f"rm -rf {OUT_DIR} && mkdir -p {OUT_DIR} && ( {command} ) > {LOG_PATH} 2>&1",
        timeout=timeout,
    )
    output = _read_text(sandbox, f"{root}/{LOG_PATH}")
    xml = _read_text(sandbox, f"{root}/{JUNIT_PATH}") if junit else None
    parser, outcomes = ("", {}) if res.timed_out else parse_outcomes(output, xml, res.exit_code)
    return SuiteRun(
        exit_code=res.exit_code,
        timed_out=res.timed_out,
        seconds=round(res.seconds, 3),
        parser=parser,
        outcomes=outcomes,
        output_tail=output[-_KEEP_OUTPUT_CHARS:],
    )


def _read_text(sandbox: Sandbox, path: str) -> str:
    try:
        data = sandbox.read_file(path)
    except Exception:
        return ""
    return data[-_MAX_LOG_BYTES:].decode("utf-8", errors="replace")


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


def run_regression(
    candidates: Sequence[Candidate],
    cache: ExecutionCache,
    config: SelectionConfig,
    *,
    test_dirs: Sequence[str],
    workers: int,
) -> RegressionRecord:
    """Discover, run and compare (see the module docstring). Never raises for a sandbox
    failure: the record says what could not be run."""
    start = time.monotonic()
    deadline = start + config.regression_budget_s
    record = RegressionRecord()

    def finish(reason: str = "") -> RegressionRecord:
        record.skipped_reason = reason
        for c in candidates:
            record.candidates.setdefault(c.id, CandidateRegressions(status="not-run"))
        record.seconds = round(time.monotonic() - start, 3)
        return record

    try:
        with cache.lease() as sandbox:
            plan = plan_regression(sandbox, candidates, config, test_dirs)
    except Exception as e:  # the sandbox failed: no evidence, selection goes on
        log.warning("regression discovery failed: %s", e)
        return finish(f"discovery failed: {type(e).__name__}: {e}")
    record.source, record.framework, record.command = plan.source, plan.framework, plan.command
    record.test_files, record.reasons = plan.test_files, plan.reasons
    if not plan.command:
        return finish(
            "no related tests found" if not plan.test_files else "no runner for these tests"
        )

    def suite(patch: str | None, run_index: int = 0) -> SuiteRun:
        remaining = deadline - time.monotonic()
        if remaining <= 1:
            raise BudgetSpent
        timeout = min(config.regression_timeout_s, remaining)
        key = ("regression", plan.command, patch_digest(patch), run_index)
        return cache.memo(key, lambda sb: run_suite(sb, patch, plan.command, timeout, plan.junit))

    try:
        with ThreadPoolExecutor(max_workers=2) as ex:
            record.original_runs = list(ex.map(lambda i: suite(None, i), (0, 1)))
    except BudgetSpent:
        return finish("the time budget ran out on the original code")
    except Exception as e:
        log.warning("regression run on the original code failed: %s", e)
        return finish(f"the run on the original code failed: {type(e).__name__}: {e}")
    first, second = (r.outcomes for r in record.original_runs)
    record.flaky = flaky_tests(first, second)
    passing = baseline(first, second)
    record.baseline_passing = len(passing)
    if not passing:
        return finish("no test passed on the original code (both runs)")

    lock = threading.Lock()

    def one(c: Candidate) -> None:
        try:
            run = suite(c.patch)
        except BudgetSpent:
            verdict = CandidateRegressions(status="not-run")
        except Exception as e:
            verdict = CandidateRegressions(
                status="error", run=SuiteRun(error=f"{type(e).__name__}: {e}"[-_KEEP_OUTPUT_CHARS:])
            )
        else:
            if not run.patch_applied:
                verdict = CandidateRegressions(status="no-apply", run=run)
            elif run.timed_out:
                slowest = max(r.seconds for r in record.original_runs)
                broke = slowest < config.regression_timeout_s / 2
                verdict = CandidateRegressions(
                    status="ok" if broke else "error",
                    regressions=sorted(passing) if broke else [],
                    run=run,
                )
            else:
                verdict = CandidateRegressions(
                    status="ok", regressions=regressions(passing, run), run=run
                )
        with lock:
            record.candidates[c.id] = verdict

    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="regression") as ex:
        list(ex.map(one, candidates))
    return finish()


class BudgetSpent(Exception):
    """The per-problem time budget for regression runs is spent."""


def regression_summary(record: RegressionRecord | None) -> dict[str, Any]:
    """Per candidate: regression count (None: no evidence), for prompts and reports."""
    if record is None:
        return {}
    return {cid: record.regressions_of(cid) for cid in record.candidates}
