"""The search/replace edit format: parse tolerantly, apply strictly, emit a git diff.

A model writes edits as blocks::

    path/to/file.py
    <<<<<<< SEARCH
    exact lines from the original file
    =======
    the lines that replace them
    >>>>>>> REPLACE

Parsing forgives what real models do (a divider of any 3+ '=', code fences around blocks,
a path decorated with backticks or "File:", a missing path on a follow-up block for the
same file). Applying does not guess: every block is located in the ORIGINAL file, exactly
first, then by a unique whitespace-insensitive match; anything else (no match, several
matches, blocks that overlap, a path outside the repository, a missing file) is an error
whose message tells the model what to fix. All errors of one edit are reported together.

The result is a unified diff that ``git apply`` accepts, including new files and files
without a trailing newline (``\\ No newline at end of file``).
"""

from __future__ import annotations

import difflib
import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from codemonkeys.generation.locate import Located, locate, split_keepends

SEARCH_RE = re.compile(r"^\s*<{3,}\s*SEARCH\s*$")
DIVIDER_RE = re.compile(r"^\s*={3,}\s*$")
REPLACE_RE = re.compile(r"^\s*>{3,}\s*REPLACE\s*$")
FENCE_RE = re.compile(r"^\s*(```|~~~)")

ReadFile = Callable[[str], "str | None"]
"""Original content of a repo-relative path, None when the file does not exist."""


class EditError(ValueError):
    """The edit cannot be used; ``str(e)`` is written for the model to act on."""

    def __init__(self, errors: list[str]):
        self.errors = errors
        super().__init__("\n\n".join(errors))


@dataclass(frozen=True)
class EditBlock:
    path: str
    search: str
    replace: str
    index: int
    """1-based position in the model's answer, used in error messages."""


@dataclass
class EditResult:
    patch: str
    files: list[str]
    notes: list[str] = field(default_factory=list)
    """Things the model should know although the edit applied (e.g. a whitespace-insensitive
    match)."""


# -- parsing ----------------------------------------------------------------------------


def _clean_path(line: str) -> str:
    """``path/to/x.py`` out of decorated lines like "File: `x.py`", "### x.py", "x.py:"."""
    s = line.strip()
    s = re.sub(r"^(#+|\*\*|//)\s*", "", s)
    s = re.sub(r"^(file(name)?|path)\s*:\s*", "", s, flags=re.IGNORECASE)
    s = s.strip().strip("`*'\"").strip()
    s = s.rstrip(":").strip()
    return s


def _path_above(lines: list[str], i: int) -> str | None:
    """The path on the closest non-blank, non-fence line above line ``i``, if it is one."""
    j = i - 1
    while j >= 0 and (not lines[j].strip() or FENCE_RE.match(lines[j])):
        j -= 1
    if j < 0 or REPLACE_RE.match(lines[j]):
        return None
    candidate = _clean_path(lines[j])
    if candidate and " " not in candidate and len(candidate) < 300:
        return candidate
    return None


def _parse_block(
    lines: list[str], i: int, index: int, path: str | None
) -> tuple[EditBlock | str, int]:
    """The block whose SEARCH marker is line ``i`` (or why it is broken) and the line to
    go on from."""
    k = i + 1
    while k < len(lines) and not REPLACE_RE.match(lines[k]) and not SEARCH_RE.match(lines[k]):
        k += 1
    if k >= len(lines) or not REPLACE_RE.match(lines[k]):
        return (
            f"Block {index}: '<<<<<<< SEARCH' at line {i + 1} of your edit has no matching "
            "'>>>>>>> REPLACE' line."
        ), k
    dividers = [d for d in range(i + 1, k) if DIVIDER_RE.match(lines[d])]
    if not dividers:
        return (
            f"Block {index}: no '=======' divider between '<<<<<<< SEARCH' and '>>>>>>> REPLACE'."
        ), k + 1
    if path is None:
        return (
            f"Block {index}: no file path. Put the file's path (relative to the repository "
            "root) on the line just above '<<<<<<< SEARCH'."
        ), k + 1
    # the divider: the canonical 7 '=' when there is one, else the first
    div = next((d for d in dividers if lines[d].strip() == "======="), dividers[0])
    search = "\n".join(lines[i + 1 : div])
    replace = "\n".join(lines[div + 1 : k])
    return EditBlock(path=path, search=search, replace=replace, index=index), k + 1


def parse_edit_blocks(text: str) -> list[EditBlock]:
    """All search/replace blocks in ``text``. Raises EditError for a structurally broken
    block (no divider, no REPLACE marker, no path) or when there is no block at all. A
    block without a path above it edits the previous block's file."""
    lines = text.replace("\r\n", "\n").split("\n")
    blocks: list[EditBlock] = []
    errors: list[str] = []
    i = 0
    while i < len(lines):
        if not SEARCH_RE.match(lines[i]):
            i += 1
            continue
        last_path = blocks[-1].path if blocks else None
        index = len(blocks) + len(errors) + 1
        block, i = _parse_block(lines, i, index, _path_above(lines, i) or last_path)
        if isinstance(block, str):
            errors.append(block)
        else:
            blocks.append(block)
    if errors:
        raise EditError(errors)
    if not blocks:
        raise EditError(
            [
                "No search/replace block found. Each change must look like:\n"
                "path/to/file.py\n<<<<<<< SEARCH\n(lines copied exactly from the file)\n"
                "=======\n(new lines)\n>>>>>>> REPLACE"
            ]
        )
    return blocks


# -- paths ------------------------------------------------------------------------------


def normalize_repo_path(path: str) -> str:
    """A repo-relative POSIX path, or EditError when it points outside the repository."""
    raw = path.strip()
    if raw.startswith("/") or re.match(r"^[A-Za-z]:[\\/]", raw) or raw.startswith("~"):
        raise EditError(
            [
                f"Path {raw!r} is absolute. Use a path relative to the repository root "
                f"(e.g. {raw.lstrip('/').split('/', 1)[-1]!r})."
            ]
        )
    p = raw.replace("\\", "/")
    while p.startswith("./"):
        p = p[2:]
    norm = posixpath.normpath(p) if p else ""
    if not norm or norm == "." or norm == ".." or norm.startswith("../"):
        raise EditError([f"Path {raw!r} is outside the repository. Edit files inside it only."])
    if norm == ".git" or norm.startswith(".git/"):
        raise EditError([f"Path {raw!r} is inside .git; edit source files only."])
    return norm


# -- diff -------------------------------------------------------------------------------


def unified_diff(path: str, old: str | None, new: str) -> str:
    """A git-style diff of one file (``old`` None = new file) that ``git apply`` accepts."""
    old_lines = split_keepends(old or "")
    new_lines = split_keepends(new)
    if old is not None and old_lines == new_lines:
        return ""
    header = f"diff --git a/{path} b/{path}\n"
    if old is None:
        header += "new file mode 100644\n"
        fromfile = "/dev/null"
    else:
        fromfile = f"a/{path}"
    if not old_lines and not new_lines:
        return header  # an empty new file
    out = [header]
    for i, line in enumerate(
        difflib.unified_diff(old_lines, new_lines, fromfile=fromfile, tofile=f"b/{path}", n=3)
    ):
        if i < 2:  # difflib's ---/+++ lines may carry trailing spaces; write our own
            out.append(f"--- {fromfile}\n" if i == 0 else f"+++ b/{path}\n")
            continue
        if line.endswith("\n"):
            out.append(line)
        else:
            out.append(line + "\n\\ No newline at end of file\n")
    return "".join(out)


# -- applying ---------------------------------------------------------------------------


FileChange = tuple[str | None, str]
"""(original content or None for a new file, new content)."""


def _by_path(blocks: list[EditBlock]) -> tuple[dict[str, list[EditBlock]], list[str]]:
    """The blocks grouped by their normalised path, and the errors of paths that are not
    inside the repository."""
    errors: list[str] = []
    by_path: dict[str, list[EditBlock]] = {}
    for b in blocks:
        try:
            p = normalize_repo_path(b.path)
        except EditError as e:
            errors.extend(f"Block {b.index}: {m}" for m in e.errors)
            continue
        by_path.setdefault(p, []).append(
            EditBlock(path=p, search=b.search, replace=b.replace, index=b.index)
        )
    return by_path, errors


def _whole_file(block: EditBlock) -> str:
    body = block.replace.strip("\n")
    return body + "\n" if body else ""


def _new_file(path: str, blocks: list[EditBlock]) -> str:
    """The content of a file that does not exist yet: one block with an empty SEARCH."""
    searches = [b for b in blocks if b.search.strip()]
    if searches:
        raise EditError(
            [
                f"Block {searches[0].index}: file {path!r} does not exist. To create a new "
                "file, leave SEARCH empty; otherwise check the path (relative to the "
                "repository root)."
            ]
        )
    if len(blocks) > 1:
        raise EditError(
            [
                f"Blocks {', '.join(str(b.index) for b in blocks)} all create the new file "
                f"{path!r}; use a single block."
            ]
        )
    return _whole_file(blocks[0])


def _check_overlaps(path: str, located: list[tuple[EditBlock, Located]]) -> None:
    """``located`` sorted by position; every block applies to the original file, so two
    blocks may not touch the same lines."""
    errors = []
    for (a, x), (c, y) in zip(located, located[1:], strict=False):
        if y.start < x.end:
            errors.append(
                f"Blocks {a.index} and {c.index} ({path}) overlap: block "
                f"{a.index} covers lines {x.start + 1}-{x.end} and block "
                f"{c.index} lines {y.start + 1}-{y.end}. Every block is applied to "
                "the original file; merge them into one block."
            )
    if errors:
        raise EditError(errors)


def _replace_blocks(path: str, blocks: list[EditBlock], original: str) -> tuple[str, list[str]]:
    """Every block located in the original file and applied: the new content and notes."""
    located: list[tuple[EditBlock, Located]] = []
    errors: list[str] = []
    for b in blocks:
        r = locate(b.search, b.replace, original, f"Block {b.index} ({b.path})")
        if isinstance(r, str):
            errors.append(r)
        else:
            located.append((b, r))
    if errors:
        raise EditError(errors)
    notes = [loc.note for _, loc in located if loc.note]  # in the model's order
    located.sort(key=lambda bl: (bl[1].start, bl[1].end))
    _check_overlaps(path, located)
    file_lines = split_keepends(original)
    for _, loc in reversed(located):
        file_lines[loc.start : loc.end] = loc.new_lines
    return "".join(file_lines), notes


def _apply_to_file(
    path: str, blocks: list[EditBlock], original: str | None
) -> tuple[FileChange, list[str]]:
    if original is None:
        return (None, _new_file(path, blocks)), []
    if not original.strip() and len(blocks) == 1 and not blocks[0].search.strip():
        return (original, _whole_file(blocks[0])), []
    new, notes = _replace_blocks(path, blocks, original)
    return (original, new), notes


def apply_edit_blocks(
    blocks: list[EditBlock], read_file: ReadFile
) -> tuple[dict[str, FileChange], list[str]]:
    """Locate every block in the original files and apply them. Returns
    {path: (original or None, new content)} and notes; raises EditError listing every
    problem found."""
    by_path, errors = _by_path(blocks)
    notes: list[str] = []
    results: dict[str, FileChange] = {}
    for path, pblocks in by_path.items():
        original = read_file(path)  # its own EditError (not a text file) stops here
        try:
            results[path], file_notes = _apply_to_file(path, pblocks, original)
        except EditError as e:
            errors.extend(e.errors)
            continue
        notes.extend(file_notes)
    if errors:
        raise EditError(errors)
    return results, notes


def edit_to_patch(text: str, read_file: ReadFile) -> EditResult:
    """Parse an edit, apply it to the original files and return the git diff.
    Raises EditError (every problem, worded for the model) when it cannot be used."""
    blocks = parse_edit_blocks(text)
    results, notes = apply_edit_blocks(blocks, read_file)
    parts = [unified_diff(p, old, new) for p, (old, new) in results.items()]
    patch = "".join(p for p in parts if p)
    if not patch.strip():
        raise EditError(
            ["The edit changes nothing: every REPLACE part is identical to its SEARCH part."]
        )
    return EditResult(
        patch=patch, files=[p for p, part in zip(results, parts, strict=True) if part], notes=notes
    )
