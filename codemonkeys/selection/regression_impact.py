"""Coverage-guided narrowing of the regression plan (test impact, as pytest-testmon does).

Once per problem, before the original code's two runs, the plan's test files run on the
original code under a line tracer restricted to the files the candidates edit
(``impact_tracer.py``, a pytest plugin written into the sandbox's ``OUT_DIR``). It records,
per test, whether it entered a function holding a line the candidates change and which of
those changed lines (``diffs.changed_old_lines``) it ran: probes compiled into the edited
files by an import hook, ``sys.settrace`` only for an edited file imported before it. The plan then
runs only the tests that executed one (pytest node ids, parameters folded into their
function), the ones touching the changed lines first, within half the run timeout by their
traced seconds. When none did (the edit is at module level, only run at import; a
non-pytest runner; the tracer did not load), the plan keeps its whole files: never less
evidence than without this step.

Why a tracer of our own and not coverage.py: the instance images do not have coverage.py
and the sandbox has no network; this needs only "which edited functions and changed lines did each test run",
which probes in the edited files give in ~250 lines of standard library at almost no cost
(a global ``sys.settrace`` function would cost every Python call: 2-3 times slower on
call-heavy code here, so it is only the fallback). Its report is read whole through a file (never the output cap),
and the traced run's outcomes are not evidence: the original's two untraced runs decide.
"""

from __future__ import annotations

import ast
import hashlib
import json
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from codemonkeys.candidates import Candidate
from codemonkeys.diffs import changed_old_lines, file_sections
from codemonkeys.execution import ISOLATE_PYTHONPATH, ExecutionCache
from codemonkeys.sandbox.base import Sandbox, SandboxError
from codemonkeys.selection.patches import is_test_file
from codemonkeys.selection.regression_discovery import LOG_PATH, OUT_DIR
from codemonkeys.selection.regression_plan import Plan, SandboxRepo, narrowed_to_tests

log = logging.getLogger(__name__)

TRACER_MODULE = "cm_impact_tracer"
WATCH_PATH = f"{OUT_DIR}/impact-watch.json"
IMPACT_PATH = f"{OUT_DIR}/impact.jsonl"
_TRACER_SOURCE = (Path(__file__).parent / "impact_tracer.py").read_text()
BUDGET_SHARE = 0.5
"""The kept tests' traced seconds may add up to this share of ``regression_timeout_s``."""


class EditedFile(BaseModel):
    """One Python file the candidates edit, as the original code has it."""

    changed: list[int]
    """Original lines some candidate changes."""
    functions: dict[str, tuple[int, int]] = Field(default_factory=dict)
    """Functions holding a changed line: qualified name -> (first body line, last line)."""

    def watch(self) -> dict[str, list[int]]:
        """What the tracer plugin watches: the functions' first body lines (probes at their
        entry), the changed lines (probes before their statements), and every watched line
        (the traced fallback: those functions' bodies and the changes)."""
        lines = set(self.changed)
        for first, last in self.functions.values():
            lines.update(range(first, last + 1))
        entries = sorted({first for first, _ in self.functions.values()})
        return {"entries": entries, "changed": self.changed, "lines": sorted(lines)}


class TracedTest(BaseModel):
    id: str
    """pytest node id, its file relative to the repository root."""
    hits: dict[str, list[int]] = Field(default_factory=dict)
    seconds: float = 0.0
    traced: list[str] = Field(default_factory=list)
    """Edited files the plugin had to trace (imported before its import hook)."""


class ImpactRecord(BaseModel):
    """What the impact run found, saved in ``RegressionRecord.impact``."""

    status: Literal["narrowed", "whole-files", "skipped"]
    """narrowed: the plan runs ``tests_kept``; whole-files: the run found no test executing
    the edit (``reason``), the plan is unchanged; skipped: no impact run (``reason``)."""
    reason: str = ""
    tests_traced: int = 0
    tests_kept: list[str] = Field(default_factory=list)
    tests_cut: list[str] = Field(default_factory=list)
    """Tests that executed the edit but did not fit ``BUDGET_SHARE`` of the run timeout."""
    files_executing: list[str] = Field(default_factory=list)
    """Test files with a test that executed the edit."""
    functions: dict[str, int] = Field(default_factory=dict)
    """``path::function`` the candidates edit -> tests that executed it."""
    files_traced: list[str] = Field(default_factory=list)
    """Edited files watched by ``sys.settrace`` (the costly fallback) rather than probes."""
    edited_lines: int = 0
    edited_lines_executed: int = 0
    exit_code: int | None = None
    timed_out: bool = False
    seconds: float = 0.0


def edited_functions(original: str, lines: set[int]) -> dict[str, tuple[int, int]]:
    """Functions (methods, nested functions: dotted names) whose source, decorators
    included, holds one of ``lines``: name -> (first body line, last line)."""
    try:
        tree = ast.parse(original)
    except (SyntaxError, ValueError):
        return {}
    out: dict[str, tuple[int, int]] = {}

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                visit(child, prefix)
                continue
            start = min([child.lineno] + [d.lineno for d in child.decorator_list])
            end = child.end_lineno or child.lineno
            if not any(start <= n <= end for n in lines):
                continue
            name = f"{prefix}{child.name}"
            if not isinstance(child, ast.ClassDef):
                out[name] = (child.body[0].lineno, end)
            visit(child, f"{name}.")

    visit(tree, "")
    return out


def edited_files(
    candidates: Sequence[Candidate], read: Callable[[str], str | None], test_dirs: Sequence[str]
) -> dict[str, EditedFile]:
    """The Python source files (not tests) the candidates edit, with the lines and
    functions any of them changes (``read`` gives the original file's text)."""
    changed: dict[str, set[int]] = {}
    for c in candidates:
        for path, section in file_sections(c.patch):
            if path.endswith(".py") and not is_test_file(path, test_dirs):
                changed.setdefault(path, set()).update(changed_old_lines(section))
    out: dict[str, EditedFile] = {}
    for path, lines in changed.items():
        text = read(path)
        if text is not None:  # None: a file the candidates create
            out[path] = EditedFile(changed=sorted(lines), functions=edited_functions(text, lines))
    return out


def impact_command(command: str, watched: dict[str, dict[str, list[int]]]) -> str:
    """``command`` with the tracer plugin loaded: the plugin and the watched lines written
    into ``OUT_DIR`` (here-documents: the script's own user writes them), that directory on
    ``PYTHONPATH``, ``-p`` through ``PYTEST_ADDOPTS``."""
    end = f"CM_IMPACT_{uuid.uuid4().hex[:8]}"
    plugin = f"{OUT_DIR}/{TRACER_MODULE}.py"
    return (
        f"cat > {plugin} <<'{end}'\n{_TRACER_SOURCE}\n{end}\n"
        f"cat > {WATCH_PATH} <<'{end}'\n{json.dumps(watched)}\n{end}\n"
        f'export CM_IMPACT_WATCH="$PWD/{WATCH_PATH}" CM_IMPACT_OUT="$PWD/{IMPACT_PATH}"; '
        f'export PYTHONPATH="$PWD/{OUT_DIR}${{PYTHONPATH:+:$PYTHONPATH}}"; '
        f'export PYTEST_ADDOPTS="${{PYTEST_ADDOPTS:+$PYTEST_ADDOPTS }}-p {TRACER_MODULE}"; '
        f"{command}"
    )


def parse_impact(raw: str) -> list[TracedTest] | None:
    """The tracer's lines; None when its header is missing (the plugin did not load)."""
    lines = [line for line in raw.splitlines() if line.strip()]
    started = False
    tests: list[TracedTest] = []
    for line in lines:
        try:
            item = json.loads(line)
        except ValueError:
            continue  # a line cut by the timeout's kill
        if item.get("tracer") == "started":
            started = True
        elif "id" in item:
            tests.append(TracedTest.model_validate(item))
    return tests if started else None


class _TraceRun(BaseModel):
    tests: list[TracedTest] | None
    exit_code: int | None
    timed_out: bool
    seconds: float


def trace_run(
    sandbox: Sandbox, plan: Plan, watched: dict[str, dict[str, list[int]]], timeout: float
) -> _TraceRun:
    """The plan's command on the original code with the tracer, in a clean ``sandbox``."""
    root = sandbox.workdir.rstrip("/")
    res = sandbox.run(
        f"rm -rf {OUT_DIR} && mkdir -p {OUT_DIR} && {ISOLATE_PYTHONPATH}export PYTHONNOUSERSITE=1"
        f" && ( {impact_command(plan.command, watched)} ) > {LOG_PATH} 2>&1",
        timeout=timeout,
    )
    try:
        raw = sandbox.read_file(f"{root}/{IMPACT_PATH}").decode("utf-8", errors="replace")
    except SandboxError:
        raw = ""
    return _TraceRun(
        tests=parse_impact(raw),
        exit_code=res.exit_code,
        timed_out=res.timed_out,
        seconds=round(res.seconds, 3),
    )


def function_id(test_id: str) -> str:
    """A pytest node id without its parameters: ``t.py::test_x[a-1]`` -> ``t.py::test_x``."""
    return test_id.split("[", 1)[0]


class _Group(BaseModel):
    """One test function's parametrisations together."""

    id: str
    order: int
    hits: dict[str, set[int]] = Field(default_factory=dict)
    seconds: float = 0.0

    def functions(self, edited: dict[str, EditedFile]) -> set[str]:
        return {
            f"{path}::{name}"
            for path, lines in self.hits.items()
            if path in edited
            for name, (first, last) in edited[path].functions.items()
            if any(first <= n <= last for n in lines)
        }

    def changed_hits(self, edited: dict[str, EditedFile]) -> set[tuple[str, int]]:
        return {
            (p, n) for p, lines in self.hits.items() if p in edited
            for n in lines.intersection(edited[p].changed)
        }  # fmt: skip


def _groups(traced: Sequence[TracedTest]) -> list[_Group]:
    groups: dict[str, _Group] = {}
    for t in traced:
        g = groups.setdefault(function_id(t.id), _Group(id=function_id(t.id), order=len(groups)))
        g.seconds += t.seconds
        for path, lines in t.hits.items():
            g.hits.setdefault(path, set()).update(lines)
    return list(groups.values())


def choose_tests(
    traced: Sequence[TracedTest], edited: dict[str, EditedFile], budget_s: float
) -> ImpactRecord:
    """The test functions that executed a watched line, those running a changed line first,
    then those running more edited functions, then the quicker; kept while their traced
    seconds add up to ``budget_s`` (the first always), in the run's order."""
    executing = [g for g in _groups(traced) if any(g.hits.values())]
    ranked = sorted(
        executing,
        key=lambda g: (not g.changed_hits(edited), -len(g.functions(edited)), g.seconds, g.order),
    )
    kept: list[_Group] = []
    spent = 0.0
    for g in ranked:
        if kept and spent + g.seconds > budget_s:
            continue
        kept.append(g)
        spent += g.seconds
    kept_ids = {g.id for g in kept}
    functions: dict[str, int] = {}
    for g in executing:
        for f in g.functions(edited):
            functions[f] = functions.get(f, 0) + 1
    return ImpactRecord(
        status="narrowed" if kept else "whole-files",
        reason="" if kept else "no test executed the edited code",
        tests_traced=len(traced),
        tests_kept=[g.id for g in sorted(kept, key=lambda g: g.order)],
        tests_cut=[g.id for g in executing if g.id not in kept_ids],
        files_executing=sorted({g.id.split("::", 1)[0] for g in executing}),
        functions=dict(sorted(functions.items())),
        files_traced=sorted({f for t in traced for f in t.traced}),
        edited_lines=sum(len(e.changed) for e in edited.values()),
        edited_lines_executed=len(set().union(*(g.changed_hits(edited) for g in executing))),
    )


def narrow_by_impact(
    plan: Plan,
    candidates: Sequence[Candidate],
    cache: ExecutionCache,
    *,
    test_dirs: Sequence[str],
    timeout_s: float,
    deadline: float,
) -> tuple[Plan, ImpactRecord]:
    """The plan narrowed to the tests that execute the edited code, and what the impact run
    found; the plan unchanged when it cannot narrow (never raises for a sandbox failure)."""
    if plan.framework != "pytest" or plan.source != "discovered":
        why = "tests set by the config" if plan.source == "config" else f"runner {plan.framework}"
        return plan, ImpactRecord(status="skipped", reason=f"{why}: whole files")
    remaining = deadline - time.monotonic()
    if remaining <= 2:
        return plan, ImpactRecord(status="skipped", reason="the time budget ran out")
    timeout = min(timeout_s, remaining / 2)

    def compute(sb: Sandbox) -> tuple[dict[str, EditedFile], _TraceRun | None]:
        edited = edited_files(candidates, SandboxRepo(sb).read, test_dirs)
        watched = {p: e.watch() for p, e in edited.items()}
        return edited, (trace_run(sb, plan, watched, timeout) if watched else None)

    digest = hashlib.sha256("\0".join(sorted(c.patch for c in candidates)).encode()).hexdigest()
    try:
        edited, run = cache.memo(("regression-impact", plan.command, digest[:16]), compute)
    except Exception as e:  # the sandbox failed: run the whole files as before
        log.warning("regression impact run failed: %s", e)
        return plan, ImpactRecord(status="skipped", reason=f"impact run failed: {e}"[:500])
    if run is None:
        return plan, ImpactRecord(status="skipped", reason="no Python source file edited")
    if run.tests is None:
        found = ImpactRecord(status="whole-files", reason="the tracer did not start")
    else:
        found = choose_tests(run.tests, edited, timeout_s * BUDGET_SHARE)
    found.exit_code, found.timed_out, found.seconds = run.exit_code, run.timed_out, run.seconds
    if found.status != "narrowed":
        return plan, found
    return narrowed_to_tests(plan, found.tests_kept), found
