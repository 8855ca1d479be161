"""Keeping test-file edits out of the chosen patch.

Design decision: **strip** the hunks of files that look like tests rather than drop the
whole candidate. Many systems add a regression test next to their fix; dropping those
candidates would throw the fix away, while the harness applies its own test patch after the
model patch (a model edit to the same test file then conflicts or silences the check). A
candidate that only edited tests becomes empty and is dropped; two candidates that differ
only in their test edits merge into one. ``SelectionConfig.allow_test_file_edits`` turns
this off.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import PurePosixPath

_TEST_NAME = re.compile(r"^(test_.*|.*_tests?|tests?|conftest)\.py$")


def is_test_file(path: str, test_dirs: Sequence[str] = ("test", "tests", "testing")) -> bool:
    """A path under a test directory (any depth) or named like a test module."""
    p = PurePosixPath(path)
    if any(part in test_dirs for part in p.parts[:-1]):
        return True
    return bool(_TEST_NAME.match(p.name))


def split_file_sections(patch: str) -> list[tuple[str, str]]:
    """(path, section text) per file of a unified diff, in order. Works for ``git diff``
    output (``diff --git`` headers) and for plain ``---``/``+++`` diffs."""
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
        text = "".join(lines[s:e])
        sections.append((_section_path(lines[s:e]), text))
    head = "".join(lines[: starts[0]])
    if head.strip():  # text before the first file header (e.g. a commit message): keep it
        sections.insert(0, ("", head))
    return sections


def _section_path(lines: list[str]) -> str:
    m = re.match(r"^diff --git a/(.+?) b/(.+?)\s*$", lines[0])
    new = old = ""
    for ln in lines:
        if ln.startswith("+++ "):
            new = ln[4:].strip().split("\t")[0]
        elif ln.startswith("--- "):
            old = ln[4:].strip().split("\t")[0]
        if new:
            break
    for cand in (new, old):
        if cand and cand != "/dev/null":
            return cand[2:] if cand.startswith(("a/", "b/")) else cand
    return m.group(2) if m else ""


def strip_test_file_edits(patch: str, test_dirs: Sequence[str]) -> tuple[str, list[str]]:
    """The patch without the sections of test files, and the paths removed."""
    kept: list[str] = []
    removed: list[str] = []
    kept_files = 0
    for path, text in split_file_sections(patch):
        if path and is_test_file(path, test_dirs):
            removed.append(path)
        else:
            kept.append(text)
            kept_files += bool(path)
    if not removed:
        return patch, []
    out = "".join(kept) if kept_files else ""
    if out and not out.endswith("\n"):
        out += "\n"
    return out, removed


def touched_files(patch: str) -> list[str]:
    """Repo-relative paths a patch touches, in order, without duplicates."""
    out: list[str] = []
    for path, _ in split_file_sections(patch):
        if path and path not in out:
            out.append(path)
    return out
