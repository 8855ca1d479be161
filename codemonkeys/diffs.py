"""Unified diffs: the one parser of the paths a patch names and of its per-file sections.

Handles what git and other tools write: ``diff --git`` headers, plain ``---``/``+++``
pairs (GNU ``diff -u``, timestamps after a tab), ``/dev/null`` for added and deleted
files, ``rename``/``copy from``/``to`` lines, names with spaces (git leaves them unquoted
in headers and ends the ``---``/``+++`` name with a tab) and C-style quoted names
(``"a/caf\\303\\251.py"``, ``"a/with space"``: octal bytes and ``\\t``-style escapes,
which git writes for non-ASCII and control characters). ``unidiff`` was considered: it
keeps the quotes and escapes in its paths, so it would need this unquoting anyway.
"""

from __future__ import annotations

import re

_C_ESCAPES = {
    "n": "\n",
    "t": "\t",
    '"': '"',
    "\\": "\\",
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "v": "\v",
    "r": "\r",
}
_QUOTED_OR_WORD = r'("(?:[^"\\]|\\.)*"|\S+)'
_GIT_HEADER = re.compile(rf"^{_QUOTED_OR_WORD} {_QUOTED_OR_WORD}$")
_RENAME_OR_COPY = re.compile(r"^(?:rename|copy) (?:from|to) (.+)$")
_OCTAL = re.compile(r"[0-7]{3}")


def unquote_path(name: str) -> str:
    """Undo git's C-style quoting (``"a/caf\\303\\251.py"`` -> ``a/café.py``); a name
    without quotes is returned as is. Bytes that are not UTF-8 survive as surrogates."""
    if not (len(name) >= 2 and name[0] == '"' and name[-1] == '"'):
        return name
    body, out, i = name[1:-1], bytearray(), 0
    while i < len(body):
        c = body[i]
        if c == "\\" and i + 1 < len(body):
            if _OCTAL.fullmatch(body[i + 1 : i + 4]):
                out.append(int(body[i + 1 : i + 4], 8) & 0xFF)
                i += 4
                continue
            out += _C_ESCAPES.get(body[i + 1], body[i + 1]).encode()
            i += 2
            continue
        out += c.encode("utf-8", "surrogateescape")
        i += 1
    return out.decode("utf-8", "surrogateescape")


def git_header_paths(line: str) -> tuple[str, str] | None:
    """``diff --git a/x b/y`` (either name possibly quoted) -> (``a/x``, ``b/y``), with
    their prefixes; None when the line is not such a header or cannot be split."""
    if not line.startswith("diff --git "):
        return None
    rest = line[len("diff --git ") :].strip()
    m = _GIT_HEADER.match(rest)
    if m:
        return unquote_path(m.group(1)), unquote_path(m.group(2))
    # Unquoted names containing spaces: git writes the same name twice, split in the middle.
    half = len(rest) // 2
    if len(rest) % 2 == 1 and rest[half] == " ":
        old, new = rest[:half], rest[half + 1 :]
        if strip_prefix(old) == strip_prefix(new):
            return old, new
    return None


def marker_path(line: str) -> str | None:
    """The name on a ``--- `` or ``+++ `` line (prefix kept, quotes undone, a tab-separated
    timestamp dropped); None for ``/dev/null`` or another line."""
    if not line.startswith(("--- ", "+++ ")):
        return None
    name = unquote_path(line[4:].split("\t")[0].rstrip())
    return None if name == "/dev/null" else name


def strip_prefix(path: str) -> str:
    """The -p1 view of a path: drop the first component (``a/``, ``b/``)."""
    return path.split("/", 1)[1] if "/" in path else path


def named_paths(patch: str) -> list[tuple[str, bool]]:
    """Every path the patch names anywhere, as written (quotes undone), with whether it
    carries an ``a/``/``b/``-style prefix (``diff --git`` and ``---``/``+++`` lines do;
    rename/copy lines do not). For safety checks: every such line counts, even inside
    a hunk, so nothing a patch tool might read as a name goes unchecked."""
    paths: list[tuple[str, bool]] = []
    for line in patch.splitlines():
        pair = git_header_paths(line)
        if pair:
            paths.extend((p, True) for p in pair)
            continue
        marked = marker_path(line)
        if marked is not None:
            paths.append((marked, True))
            continue
        m = _RENAME_OR_COPY.match(line)
        if m:
            paths.append((unquote_path(m.group(1)), False))
    return list(dict.fromkeys(paths))


def _section_path(lines: list[str]) -> str:
    """Repo-relative path of one file's section: the ``diff --git`` header's new side;
    without a readable header, the ``+++`` name, the ``---`` name for a deletion, else the
    ``rename to`` name."""
    pair = git_header_paths(lines[0].rstrip("\r\n"))
    if pair:
        return strip_prefix(pair[1])
    new = old = renamed = ""
    for ln in lines:
        ln = ln.rstrip("\r\n")
        if ln.startswith("+++ "):
            new = marker_path(ln) or ""
            break
        if ln.startswith("--- "):
            old = marker_path(ln) or ""
        elif ln.startswith("rename to "):
            renamed = unquote_path(ln[len("rename to ") :])
    for cand in (new, old):
        if cand:
            return strip_prefix(cand) if cand.startswith(("a/", "b/")) else cand
    return renamed


def file_sections(patch: str) -> list[tuple[str, str]]:
    """(repo-relative path, section text) per file of a unified diff, in order; text
    before the first file header (a commit message) is kept as a section with path
    ``""``. Works for ``git diff`` output (``diff --git`` headers) and for plain
    ``---``/``+++`` diffs."""
    lines = patch.splitlines(keepends=True)
    git_style = any(ln.startswith("diff --git ") for ln in lines)

    def starts_file(i: int) -> bool:
        if git_style:
            return lines[i].startswith("diff --git ")
        return (
            lines[i].startswith("--- ") and i + 1 < len(lines) and lines[i + 1].startswith("+++ ")
        )

    starts = [i for i in range(len(lines)) if starts_file(i)]
    if not starts:
        return [("", patch)] if patch.strip() else []
    sections = []
    for n, s in enumerate(starts):
        e = starts[n + 1] if n + 1 < len(starts) else len(lines)
        sections.append((_section_path(lines[s:e]), "".join(lines[s:e])))
    head = "".join(lines[: starts[0]])
    if head.strip():
        sections.insert(0, ("", head))
    return sections


def touched_files(patch: str) -> list[str]:
    """Repo-relative paths a patch touches (new side; old side for deletions), in order,
    without duplicates."""
    return list(dict.fromkeys(path for path, _ in file_sections(patch) if path))


_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+\d+(?:,\d+)? @@")


def changed_old_lines(section: str) -> set[int]:
    """The original file's line numbers one file's section changes: removed lines, and for
    a pure insertion the lines on both sides of it (the code it lands in)."""
    out: set[int] = set()
    old = 0
    removed = False
    for line in section.splitlines():
        m = _HUNK.match(line)
        if m:
            old, removed = int(m.group(1)), False
        elif not old or line.startswith("\\"):
            continue  # the file's header lines; "\ No newline at end of file"
        elif line.startswith("-"):
            out.add(old)
            old, removed = old + 1, True
        elif line.startswith("+"):
            if not removed:
                out.update((max(1, old - 1), old))
        else:
            old, removed = old + 1, False
    return out
