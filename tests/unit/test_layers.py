"""The layers docs/architecture.md draws ("## Layers"), checked on the import graph.

The graph holds every import of a ``codemonkeys`` module or of ``rich``, wherever it is
written: at module level, inside a function, under ``if TYPE_CHECKING:``. A deferred import
still says one module knows another, so it counts like any other. Any circle fails (named),
and so does any arrow the layer rules forbid (named with its file and line).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "codemonkeys"

SCREEN = ("rich", "codemonkeys.progress", "codemonkeys.cli")
"""What draws on a terminal; only the presentation layer imports it."""
PRESENTATION = (
    "codemonkeys.__main__",
    "codemonkeys.cli",
    "codemonkeys.progress",
    "codemonkeys.report",
    "codemonkeys.show",
    "codemonkeys.analysis.render",
)
JOBS = (
    "codemonkeys.swebench.jobs",
    "codemonkeys.solve",
    "codemonkeys.ensemble_run",
    "codemonkeys.swebench.run",
    "codemonkeys.swebench.estimate",
    "codemonkeys.swebench.evaluate",
    "codemonkeys.swebench.evaluate_ray",
    "codemonkeys.doctor",
)
"""One module per command the CLI calls."""
RUNNERS = ("codemonkeys.pipeline", "codemonkeys.distributed", "codemonkeys.ensemble")
"""What takes problems through the stages: the scheduler, the cluster executor, ensembling."""
RECORDS = (
    "codemonkeys.records",
    "codemonkeys.record_types",
    "codemonkeys.problem",
    "codemonkeys.run_records",
    "codemonkeys.context.records",
    "codemonkeys.generation.records",
    "codemonkeys.selection.records",
)
STAGES = ("codemonkeys.context", "codemonkeys.generation", "codemonkeys.selection")
STAGE_RUNNERS = (
    "codemonkeys.context.stage",
    "codemonkeys.generation.stage",
    "codemonkeys.generation.adaptive",
    "codemonkeys.selection.stage",
)
"""What runs a stage and saves its records (the rest of a stage package are its parts)."""
INFRASTRUCTURE = (
    "codemonkeys.llm",
    "codemonkeys.sandbox",
    "codemonkeys.store",
    "codemonkeys.tempdirs",
    "codemonkeys.interrupts",
    "codemonkeys.errors",
    "codemonkeys.diffs",
    "codemonkeys.execution",
    "codemonkeys.config",
    "codemonkeys.config_loading",
    "codemonkeys.prompts",
    "codemonkeys.github",
    "codemonkeys.localrepo",
    "codemonkeys.candidates",
    "codemonkeys.original_files",
    "codemonkeys.predictions",
)
READERS = (
    "codemonkeys.report",
    "codemonkeys.show",
    "codemonkeys.analysis",
    "codemonkeys.run_patches",
)
"""What reads a finished run: records only, never the logic that wrote them."""


def in_group(module: str, group: tuple[str, ...]) -> bool:
    return any(module == g or module.startswith(g + ".") for g in group)


def is_stage(module: str) -> bool:
    """A stage's logic (its ``records`` module is a record, not the stage)."""
    return in_group(module, STAGES) and not in_group(module, RECORDS)


def folder(module: str) -> str:
    """The box a module is drawn in: its package below ``codemonkeys``, or itself."""
    parts = module.split(".")
    return ".".join(parts[:2])


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _targets(module: str, is_package: bool, node: ast.Import | ast.ImportFrom) -> Iterator[str]:
    """The modules (ours, or ``rich``) an import statement loads."""
    if isinstance(node, ast.Import):
        for alias in node.names:
            yield alias.name
        return
    base = node.module or ""
    if node.level:  # relative: from the module's package, one level up per extra dot
        package = module.split(".") if is_package else module.split(".")[:-1]
        package = package[: len(package) - node.level + 1]
        base = ".".join(package + ([base] if base else []))
    for alias in node.names:
        sub = f"{base}.{alias.name}"
        yield sub if sub in MODULES else base


def import_graph() -> dict[str, dict[str, int]]:
    """module -> {imported module (ours, or ``rich``): line of the first such import}."""
    graph: dict[str, dict[str, int]] = {}
    for module, path in MODULES.items():
        edges: dict[str, int] = {}
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            for target in _targets(module, path.name == "__init__.py", node):
                top = target.split(".")[0]
                name = "rich" if top == "rich" else target
                if (name in MODULES or name == "rich") and name != module:
                    edges.setdefault(name, node.lineno)
        graph[module] = edges
    return graph


def circles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next((c for c in children if c in graph), None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def arrows(graph: dict[str, dict[str, int]]) -> Iterator[tuple[str, str, str]]:
    """(importer, imported, where) for every import in the graph."""
    for module, edges in graph.items():
        for target, line in edges.items():
            yield module, target, f"{MODULES[module].relative_to(ROOT)}:{line}"


def forbidden(graph: dict[str, dict[str, int]]) -> list[str]:
    """Every arrow a layer rule forbids, with the rule's name."""
    broken = []
    for src, dst, where in arrows(graph):
        for rule, applies in RULES.items():
            if applies(src, dst):
                broken.append(f"{rule}: {where} imports {dst}")
    for rule, (sources, targets) in RULES_THROUGH.items():
        for src in graph:
            if not in_group(src, sources):
                continue
            for dst, where in reach(graph, src).items():
                if in_group(dst, targets):
                    broken.append(f"{rule}: {src} loads {dst} (through {where})")
    return broken


def folder_graph(graph: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    """The graph with each folder (package) drawn as one box."""
    boxes: dict[str, dict[str, int]] = {}
    for src, edges in graph.items():
        box = boxes.setdefault(folder(src), {})
        for dst, line in edges.items():
            if folder(dst) != folder(src) and dst != "rich":
                box.setdefault(folder(dst), line)
    return boxes


def _stage_calls_back(src: str, dst: str) -> bool:
    return is_stage(src) and in_group(dst, JOBS + RUNNERS + PRESENTATION + READERS)


def packages_of(module: str) -> list[str]:
    """The packages Python runs (their ``__init__.py``) before it loads ``module``."""
    parts = module.split(".")
    return [p for i in range(2, len(parts)) if (p := ".".join(parts[:i])) in MODULES]


def reach(graph: dict[str, dict[str, int]], start: str) -> dict[str, str]:
    """Every module ``start`` loads, directly or through others (a module's packages
    included) -> the first import on the way (``file:line``)."""
    seen: dict[str, str] = {}
    todo = [(start, "")]
    while todo:
        module, via = todo.pop()
        loads = dict(graph.get(module, {}))
        for package in packages_of(module):
            loads.setdefault(package, 1)
        for target, line in loads.items():
            if target not in seen and target != start:
                seen[target] = via or f"{MODULES[module].relative_to(ROOT)}:{line}"
                todo.append((target, seen[target]))
    return seen


RULES = {
    "only the presentation layer draws on a terminal": lambda src, dst: (
        in_group(dst, SCREEN) and not in_group(src, PRESENTATION)
    ),
    "infrastructure knows no stage, runner, job or screen": lambda src, dst: (
        in_group(src, INFRASTRUCTURE)
        and (is_stage(dst) or in_group(dst, RUNNERS + JOBS + PRESENTATION + READERS))
    ),
    "stages do not call back up": _stage_calls_back,
    "the cluster executor knows no job": lambda src, dst: (
        in_group(src, ("codemonkeys.distributed",)) and in_group(dst, JOBS + PRESENTATION)
    ),
    "readers read records, never a stage runner, a runner or a job": lambda src, dst: (
        in_group(src, READERS) and in_group(dst, STAGE_RUNNERS + RUNNERS + JOBS)
    ),
    "analysis knows no report": lambda src, dst: (
        in_group(src, ("codemonkeys.analysis",)) and in_group(dst, ("codemonkeys.report",))
    ),
}


def test_the_graph_sees_every_kind_of_import():
    graph = import_graph()
    assert len(graph) > 50
    # module level, function level and TYPE_CHECKING imports are all arrows
    assert "codemonkeys.config" in graph["codemonkeys.pipeline"]
    assert any(
        isinstance(n, ast.ImportFrom) and n.col_offset > 0
        for n in ast.walk(ast.parse(MODULES["codemonkeys.pipeline"].read_text()))
    )


RULES_THROUGH = {
    "records know no stage runner, runner, job or screen": (
        RECORDS,
        STAGE_RUNNERS + RUNNERS + JOBS + PRESENTATION + READERS + ("rich",),
    ),
}
"""Rules on everything a module loads, not only what it names: loading a record must never
load the stage that writes it."""


def test_a_circle_and_a_forbidden_arrow_are_caught():
    """The checks themselves: a made-up graph with a circle and a stage calling up."""
    graph = {
        "codemonkeys.records": {"codemonkeys.context.stage": 3},
        "codemonkeys.context.stage": {"codemonkeys.records": 1, "codemonkeys.pipeline": 2},
        "codemonkeys.pipeline": {},
    }
    assert circles(graph) == [["codemonkeys.context.stage", "codemonkeys.records"]]
    assert _stage_calls_back("codemonkeys.context.stage", "codemonkeys.pipeline")
    assert not _stage_calls_back("codemonkeys.selection.stage", "codemonkeys.context.stage")
    assert "records know no stage runner, runner, job or screen" in RULES_THROUGH
    assert sorted(reach(graph, "codemonkeys.records")) == [
        "codemonkeys.context",  # its package runs first
        "codemonkeys.context.stage",
        "codemonkeys.pipeline",
    ]


def test_no_import_circle():
    found = circles(import_graph())
    assert not found, "import circles (break each by moving the shared part down): " + "; ".join(
        " <-> ".join(c) for c in found
    )


def test_no_circle_between_folders():
    """Drawn with the packages as boxes (``llm/``, ``context/``, ...), still no circle."""
    found = circles(folder_graph(import_graph()))
    assert not found, "circles between folders: " + "; ".join(" <-> ".join(c) for c in found)


def test_the_layer_rules_of_the_architecture_doc_hold():
    doc = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    for rule in [*RULES, *RULES_THROUGH]:
        assert rule in doc, f"docs/architecture.md does not state the rule {rule!r}"
    broken = forbidden(import_graph())
    assert not broken, "imports across the layers:\n" + "\n".join(broken)
