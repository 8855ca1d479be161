"""Patch safety: which paths a unified diff touches, and refusing the dangerous ones.

Checked on the host before anything runs: absolute paths, ``..`` components and paths
inside ``.git`` are refused outright. Symlink escapes (``link/file`` where ``link`` points
outside the repository, or into its ``.git``) are checked inside the sandbox with
``realpath`` just before applying, since only the sandbox knows its own tree.
"""

from __future__ import annotations

from pathlib import PurePosixPath

from codemonkeys.diffs import named_paths, strip_prefix


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
    for raw, prefixed in named_paths(patch):
        for candidate in (raw, strip_prefix(raw)):
            reason = unsafe_path_reason(candidate)
            if reason:
                return [], f"refused: {raw!r}: {reason}"
        rel.append(strip_prefix(raw) if prefixed else raw)
    return list(dict.fromkeys(rel)), None
