"""Reset's list of what changed (``agent.TOUCHED_LIST``): NUL-separated entries, ``o``
(an entry written or made: a run's, absolute; a patch's, relative to the work tree), ``c``
(a path a patch changed) and ``d`` (a directory whose entries changed)."""

from __future__ import annotations

import os

from .settings import get


def relative(workdir: str, path: str) -> str | None:
    """A listed path relative to the work tree ("" for its top); None if outside it."""
    if path.startswith("/"):
        if path != workdir and not path.startswith(workdir + "/"):
            return None
        path = path[len(workdir) + 1 :]
    rel = os.path.normpath(path) if path else "."
    if rel == ".":
        return ""
    if rel == ".." or rel.startswith("../") or rel.startswith("/"):
        return None
    return rel


def read_list(workdir: str, list_path: str) -> list[tuple[str, str]] | None:
    """The entries as (kind, relative path); None when one is not understood."""
    out = []
    for entry in get(list_path).split(b"\0"):
        if not entry:
            continue
        kind, rel = entry[:1].decode(errors="replace"), relative(workdir, os.fsdecode(entry[1:]))
        if rel is None or kind not in ("o", "c", "d"):
            return None
        out.append((kind, rel))
    return out


def listed_paths(workdir: str, list_path: str) -> list[tuple[str, str]]:
    """The understood entries, absolute, as ("d", directory) or ("o", any other path)."""
    out = []
    for entry in get(list_path).split(b"\0"):
        rel = relative(workdir, os.fsdecode(entry[1:])) if entry[:1] in (b"o", b"c", b"d") else None
        if rel is not None:
            kind = "d" if entry[:1] == b"d" else "o"
            out.append((kind, workdir + "/" + rel if rel else workdir))
    return out


def ancestors(rel: str) -> list[str]:
    """``a/b/c`` -> ``a``, ``a/b``."""
    parts = rel.split("/")
    return ["/".join(parts[:i]) for i in range(1, len(parts))]
