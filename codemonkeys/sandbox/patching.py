"""Patch safety: which paths a unified diff touches, and refusing the dangerous ones.

Checked on the host before anything runs: absolute paths, ``..`` components and paths
inside ``.git`` are refused outright. Symlink escapes (``link/file`` where ``link`` points
outside the repository) are checked inside the sandbox with ``realpath`` just before
applying, since only the sandbox knows its own tree.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath

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


def _unquote(path: str) -> str:
    """Undo git's C-style quoting (``"a/caf\\303\\251.py"``)."""
    if not (len(path) >= 2 and path[0] == '"' and path[-1] == '"'):
        return path
    body, out, i = path[1:-1], bytearray(), 0
    while i < len(body):
        c = body[i]
        if c == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            if (
                nxt in "01234567"
                and i + 3 < len(body) + 1
                and re.fullmatch(r"[0-7]{3}", body[i + 1 : i + 4])
            ):
                out.append(int(body[i + 1 : i + 4], 8))
                i += 4
                continue
            out += _C_ESCAPES.get(nxt, nxt).encode()
            i += 2
            continue
        out += c.encode()
        i += 1
    return out.decode("utf-8", "surrogateescape")


def _split_git_header(rest: str) -> tuple[str, str] | None:
    """``a/x b/y`` (possibly quoted) -> (a/x, b/y)."""
    rest = rest.strip()
    m = re.match(r'^("(?:[^"\\]|\\.)*"|\S+) ("(?:[^"\\]|\\.)*"|\S+)$', rest)
    if m:
        return _unquote(m.group(1)), _unquote(m.group(2))
    # Unquoted names containing spaces: "a/x y b/x y" -> split in the middle.
    half = len(rest) // 2
    if rest[half] == " ":
        return rest[:half], rest[half + 1 :]
    return None


def raw_patch_paths(patch: str) -> list[tuple[str, bool]]:
    """Every path named by the patch, as written, with whether it carries an a/ b/
    style prefix (diff --git and ---/+++ lines do; rename/copy lines do not)."""
    paths: list[tuple[str, bool]] = []
    for line in patch.splitlines():
        if line.startswith("diff --git "):
            pair = _split_git_header(line[len("diff --git ") :])
            if pair:
                paths.extend((p, True) for p in pair)
        elif line.startswith(("--- ", "+++ ")):
            name = line[4:].split("\t")[0].rstrip()
            name = _unquote(name)
            if name != "/dev/null":
                paths.append((name, True))
        else:
            m = re.match(r"^(?:rename|copy) (?:from|to) (.+)$", line)
            if m:
                paths.append((_unquote(m.group(1)), False))
    return list(dict.fromkeys(paths))


def _strip_prefix(path: str) -> str:
    """The -p1 view of a path: drop the first component (a/, b/)."""
    return path.split("/", 1)[1] if "/" in path else path


def unsafe_path_reason(path: str) -> str | None:
    p = PurePosixPath(path)
    if path.startswith("/") or p.is_absolute():
        return "absolute path"
    if ".." in p.parts:
        return "path leaves the repository (..)"
    if ".git" in p.parts:
        return "path inside .git"
    if "\0" in path:
        return "NUL in path"
    return None


def check_patch_paths(patch: str) -> tuple[list[str], str | None]:
    """(repo-relative paths the patch touches, refusal message or None)."""
    rel: list[str] = []
    for raw, prefixed in raw_patch_paths(patch):
        for candidate in (raw, _strip_prefix(raw)):
            reason = unsafe_path_reason(candidate)
            if reason:
                return [], f"refused: {raw!r}: {reason}"
        rel.append(_strip_prefix(raw) if prefixed else raw)
    return list(dict.fromkeys(rel)), None
