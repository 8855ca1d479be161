"""Shrink a file to its outline: keep class and function signatures, elide bodies.

Used when a relevant file alone is bigger than the budget (packing) or than what the
relevance model may read (``relevance_max_file_tokens``): the outline still tells the model
what the file defines. Python is shrunk with ``ast`` (exact line spans); other languages
with a brace heuristic (C, C++, Java, JS/TS, Go, Rust, C#, PHP, ...) or, without braces, an
indentation heuristic. Each elided run becomes one marker line at the run's indentation:
``... # omitted`` (Python and ``#``-comment languages) or ``// ... omitted``.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable

PY_MARKER = "... # omitted"
C_MARKER = "// ... omitted"
_HASH_COMMENT_EXT = {
    "py",
    "pyi",
    "rb",
    "sh",
    "bash",
    "pl",
    "r",
    "jl",
    "nim",
    "cr",
    "ex",
    "exs",
    "coffee",
    "yaml",
    "yml",
    "toml",
    "cfg",
    "mk",
    "cmake",
}
_CONTAINER = re.compile(
    r"\b(class|struct|interface|namespace|impl|trait|enum|module|object|union|extern|"
    r"protocol|extension|record)\b"
)
_DOCSTRING_KEEP_LINES = 3


def _marker_for(path: str) -> str:
    ext = path.rsplit(".", 1)[-1].lower() if "." in path else ""
    return PY_MARKER if ext in _HASH_COMMENT_EXT else C_MARKER


def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]


def _collapse(lines: list[str], elide: list[bool], marker: str) -> str:
    """Replace each run of elided lines by one marker line indented like the run's first."""
    out: list[str] = []
    i = 0
    while i < len(lines):
        if not elide[i]:
            out.append(lines[i])
            i += 1
            continue
        j = i
        while j < len(lines) and elide[j]:
            j += 1
        first = next((ln for ln in lines[i:j] if ln.strip()), lines[i])
        out.append(f"{_indent(first)}{marker}")
        i = j
    return "\n".join(out) + ("\n" if out else "")


def _python_elisions(tree: ast.Module, n_lines: int) -> list[bool]:
    elide = [False] * n_lines

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.ClassDef):
                visit(node.body)
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                stmts = node.body
                first = stmts[0]
                if first.lineno == node.lineno:
                    continue  # one-liner: nothing to gain
                start = first.lineno
                is_doc = (
                    isinstance(first, ast.Expr)
                    and isinstance(first.value, ast.Constant)
                    and isinstance(first.value.value, str)
                )
                if (
                    is_doc
                    and (first.end_lineno or first.lineno) - first.lineno < _DOCSTRING_KEEP_LINES
                ):
                    if len(stmts) == 1:
                        continue
                    start = (first.end_lineno or first.lineno) + 1
                end = node.end_lineno or start
                for ln in range(start, end + 1):
                    elide[ln - 1] = True

    visit(tree.body)
    return elide


def _brace_elisions(lines: list[str]) -> list[bool]:
    """Elide the insides of brace blocks that are not containers (class, namespace, ...).
    The line that opens a body (the signature) and the line that closes it stay."""
    elide = [False] * len(lines)
    stack: list[bool] = []  # per open brace: True when it opens (or is inside) a body
    for i, line in enumerate(lines):
        code = re.sub(r"//.*$|\"(?:\\.|[^\"\\])*\"|'(?:\\.|[^'\\])*'", "", line)
        body_before = any(stack)
        for ch in code:
            if ch == "{":
                stack.append(bool(stack and stack[-1]) or not _CONTAINER.search(code))
            elif ch == "}" and stack:
                stack.pop()
        elide[i] = body_before and any(stack)
    return elide


def _indent_elisions(lines: list[str], keep_levels: int = 1) -> list[bool]:
    """Without braces: keep lines indented at most ``keep_levels`` levels."""
    widths = sorted({len(_indent(ln).expandtabs(4)) for ln in lines if ln.strip()} - {0})
    unit = widths[0] if widths else 4
    limit = unit * keep_levels
    return [bool(ln.strip()) and len(_indent(ln).expandtabs(4)) > limit for ln in lines]


def shrink_source(path: str, text: str) -> str:
    """Outline of ``text``: signatures kept, bodies replaced by a marker line. Returns the
    text unchanged when nothing can be elided."""
    lines = text.splitlines()
    if not lines:
        return text
    ext = path.rsplit(".", 1)[-1].lower() if "." in path else ""
    if ext in ("py", "pyi"):
        try:
            tree = ast.parse(text)
        except (SyntaxError, ValueError, RecursionError):
            elide = _indent_elisions(lines)
        else:
            elide = _python_elisions(tree, len(lines))
    elif text.count("{") >= 2 and text.count("{") >= text.count("\n") // 200:
        elide = _brace_elisions(lines)
    else:
        elide = _indent_elisions(lines)
    if not any(elide):
        return text
    return _collapse(lines, elide, _marker_for(path))


def truncate_to_tokens(text: str, max_tokens: int, count: Callable[[str], int]) -> tuple[str, bool]:
    """Keep whole leading lines of ``text`` within ``max_tokens``; a marker says how many
    lines were cut. Returns (text, truncated)."""
    if count(text) <= max_tokens:
        return text, False
    lines = text.splitlines(keepends=True)
    lo, hi = 0, len(lines)
    while lo < hi:  # binary search the longest prefix that fits (marker included)
        mid = (lo + hi + 1) // 2
        if count("".join(lines[:mid])) + 20 <= max_tokens:
            lo = mid
        else:
            hi = mid - 1
    kept = "".join(lines[:lo])
    if kept and not kept.endswith("\n"):
        kept += "\n"
    return kept + f"... [truncated: {len(lines) - lo} more lines not shown]\n", True
