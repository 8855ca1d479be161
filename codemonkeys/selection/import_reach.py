"""Which modules import which, read with ``git grep`` (no file is parsed): the import
patterns of a module, the modules importing a set of modules, the entry modules a module is
reached from, and the test files that drive a command-line entry point (a console script's
function, ``python -m <package>``). ``regression_discovery`` ranks tests with them.

Grep finds imports anywhere in a file (deferred ones inside functions too, as pylint's
``run_pylint`` imports ``pylint.lint``), which is what reaching a module at run time needs;
the walk is bounded in depth and width, so a module everything imports costs a few greps.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import PurePosixPath

from codemonkeys.selection.patches import is_test_file

Grep = Callable[[str, Sequence[str]], list[str]]
"""(extended regex, paths) -> the paths whose text matches."""


def module_name(path: str) -> str | None:
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


def relative_import_pattern(src: str) -> str:
    """An extended regex for a relative import of ``src`` by a module of its own package."""
    stem = PurePosixPath(src).stem
    return (
        f"(from[[:space:]]+\\.{stem}[[:space:]]+import)"
        f"|(from[[:space:]]+\\.[[:space:]]+import[^#]*\\b{stem}\\b)"
    )


def entry_drivers(
    py_tests: Sequence[str], files: Sequence[str], entry_points: Mapping[str, str], grep: Grep
) -> dict[str, list[str]]:
    """{entry module: the test files driving it}: importing a console script's function
    (``from pylint import run_pylint``, ``pylint.run_pylint(``) or running ``python -m pkg``
    (a package with ``__main__.py``; ``"-m", "pkg"`` in an argument list)."""
    regexes: dict[str, str] = {}
    for target in entry_points.values():
        module, _, func = target.partition(":")
        func = func.split(".")[0].strip()
        if module.strip() and func.isidentifier():
            m = re.escape(module.strip())
            regexes[module.strip()] = (
                f"(from[[:space:]]+{m}[[:space:]]+import[^#]*\\b{func}\\b)|(\\b{m}\\.{func}\\b)"
            )
    for f in files:
        main = module_name(f) if PurePosixPath(f).name == "__main__.py" else None
        if main and not is_test_file(f, ()):
            pkg = re.escape(main.removesuffix(".__main__"))
            quote = "[\"']"  # a regex starting with "-" would be read as an option of git grep
            regexes[main] = (
                f"(-m({quote}[[:space:]]*,[[:space:]]*{quote}|[[:space:]]+){pkg}({quote}|[[:space:]]|$))"
            )
    if not regexes or not py_tests:
        return {}
    anyone = grep("|".join(f"({r})" for r in regexes.values()), py_tests)  # most have none
    found = {module: grep(regex, anyone) for module, regex in regexes.items()} if anyone else {}
    return {module: tests for module, tests in found.items() if tests}


def importers(modules: Sequence[str], by_module: Mapping[str, str], py_sources: Sequence[str],
               grep: Grep, chunk: int = 20) -> set[str]:  # fmt: skip
    """The modules importing any of ``modules``: absolute imports anywhere, relative ones
    (``from .run import Run``) from their own package (``chunk`` modules per regex)."""
    hits: set[str] = set()
    for i in range(0, len(modules), chunk):
        hits |= set(grep("|".join(f"({import_pattern(m)})" for m in modules[i : i + chunk]),
                         py_sources))  # fmt: skip
    relative: dict[PurePosixPath, list[str]] = {}  # package directory -> its modules' patterns
    for m in modules:
        path = PurePosixPath(by_module.get(m, ""))
        home = path.parent.parent if path.name == "__init__.py" else path.parent
        named = str(path.parent) + ".py" if path.name == "__init__.py" else str(path)
        relative.setdefault(home, []).append(f"({relative_import_pattern(named)})")
    for home, patterns in relative.items():
        package = [f for f in py_sources if PurePosixPath(f).parent == home]
        for i in range(0, len(patterns), chunk) if package else ():
            hits |= set(grep("|".join(patterns[i : i + chunk]), package))
    return {n for f in hits if (n := module_name(f))}


class _Spent(Exception):
    """The walk's greps are spent."""


def reached_from(src: str, entries: set[str], py_sources: Sequence[str], grep: Grep,
                 depth: int = 4, width: int = 60, max_greps: int = 16) -> set[str]:  # fmt: skip
    """The ``entries`` (modules) that import ``src``, through at most ``depth`` importers.
    Each step follows at most ``width`` modules, the shallowest first (entry points live near
    a package's top), and the walk stops with what it found after ``max_greps`` greps (each
    is a sandbox command)."""
    module = module_name(src)
    if not module:
        return set()
    by_module = {m: f for f in py_sources if (m := module_name(f))}
    calls = 0

    def counted(regex: str, paths: Sequence[str]) -> list[str]:
        nonlocal calls
        if calls >= max_greps:
            raise _Spent
        calls += 1
        return grep(regex, paths)

    # ``python -m pkg`` runs ``pkg/__init__.py``, then ``pkg/__main__.py``: either reaches
    gates = {e: {e, e.removesuffix(".__main__")} for e in entries}
    seen = frontier = {module}
    try:
        for _ in range(depth):
            if not frontier or all(g & seen for g in gates.values()):
                break
            follow = sorted(frontier, key=lambda m: (m.count("."), m))[:width]
            frontier = importers(follow, by_module, py_sources, counted, width) - seen
            seen = seen | frontier
    except _Spent:
        pass
    return {e for e, g in gates.items() if g & seen}
