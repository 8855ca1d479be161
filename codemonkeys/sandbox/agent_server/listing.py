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


def _parsed(workdir: str, list_path: str) -> list[tuple[str, str | None]]:
    """Every entry as (kind, path relative to the work tree, None if outside it)."""
    return [
        (entry[:1].decode(errors="replace"), relative(workdir, os.fsdecode(entry[1:])))
        for entry in get(list_path).split(b"\0")
        if entry
    ]


def read_list(workdir: str, list_path: str) -> list[tuple[str, str]] | None:
    """The entries as (kind, relative path); None when one is not understood."""
    out = []
    for kind, rel in _parsed(workdir, list_path):
        if rel is None or kind not in ("o", "c", "d"):
            return None
        out.append((kind, rel))
    return out


def listed_paths(workdir: str, list_path: str) -> list[tuple[str, str]]:
    """The understood entries, absolute, as ("d", directory) or ("o", any other path)."""
    return [
        ("d" if kind == "d" else "o", workdir + "/" + rel if rel else workdir)
        for kind, rel in _parsed(workdir, list_path)
        if rel is not None and kind in ("o", "c", "d")
    ]


def ancestors(rel: str) -> list[str]:
    """``a/b/c`` -> ``a``, ``a/b``."""
    parts = rel.split("/")
    return ["/".join(parts[:i]) for i in range(1, len(parts))]
