"""The size limits CONTRIBUTING.md sets for `codemonkeys/` (ruff's C901 holds the complexity one).

A reader should take in any function at a glance and any module in one sitting; these limits
are what the code meets today, so a change that breaks one says so here instead of drifting.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "codemonkeys"
MAX_FUNCTION_LINES = 60
MAX_MODULE_LINES = 500


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_the_package_is_where_the_limits_look():
    assert (PACKAGE / "pipeline.py").is_file()
    assert len(_modules()) > 50


def test_no_function_is_longer_than_the_limit():
    too_long = []
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    too_long.append(
                        f"{path.relative_to(PACKAGE)}:{node.lineno} {node.name} ({lines})"
                    )
    assert not too_long, f"functions over {MAX_FUNCTION_LINES} lines: {too_long}"


def test_no_module_is_longer_than_the_limit():
    too_long = [
        f"{path.relative_to(PACKAGE)} ({n})"
        for path in _modules()
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    ]
    assert not too_long, f"modules over {MAX_MODULE_LINES} lines: {too_long}"
