"""Keeping test-file edits out of the chosen patch.

Design decision: **strip** the hunks of files that look like tests rather than drop the
whole candidate. Many systems add a regression test next to their fix; dropping those
candidates would throw the fix away, while the harness applies its own test patch after the
model patch (a model edit to the same test file then conflicts or silences the check). A
candidate that only edited tests becomes empty and is dropped; two candidates that differ
only in their test edits merge into one. ``SelectionConfig.allow_test_file_edits`` turns
this off.

Files that change how a test runner behaves are stripped the same way (and are not turned
off by that setting): ``sitecustomize.py`` / ``usercustomize.py`` (run by every
interpreter that finds them on its path), ``*.pth`` files and pytest's own ``pytest.ini``.
No fix needs them, and a candidate that adds a root ``sitecustomize.py`` making every
interpreter exit 0 would otherwise pass every test. (``conftest.py`` is a test file already.)
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import PurePosixPath

from codemonkeys.diffs import file_sections

_TEST_NAME = re.compile(r"^(test_.*|.*_tests?|tests?|conftest)\.py$")
_RUNNER_FILE = re.compile(r"^(sitecustomize\.py|usercustomize\.py|.*\.pth|\.?pytest\.ini)$")


def is_runner_file(path: str) -> bool:
    """A file that changes how an interpreter or test runner starts (see module docstring)."""
    return bool(_RUNNER_FILE.match(PurePosixPath(path).name))


def is_test_file(path: str, test_dirs: Sequence[str] = ("test", "tests", "testing")) -> bool:
    """A path under a test directory (any depth) or named like a test module."""
    p = PurePosixPath(path)
    if any(part in test_dirs for part in p.parts[:-1]):
        return True
    return bool(_TEST_NAME.match(p.name))


def strip_test_file_edits(
    patch: str, test_dirs: Sequence[str], *, tests: bool = True
) -> tuple[str, list[str]]:
    """The patch without the sections of test files (unless ``tests`` is False) and of
    runner files (always), and the paths removed."""
    kept: list[str] = []
    removed: list[str] = []
    kept_files = 0
    for path, text in file_sections(patch):
        if path and (is_runner_file(path) or (tests and is_test_file(path, test_dirs))):
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
