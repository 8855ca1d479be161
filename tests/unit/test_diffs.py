"""One diff-path parser (codemonkeys/diffs.py) behind every user of patch paths: quoted
names (``"a/with space"``, git's octal escapes for non-ASCII) read the same everywhere."""

from __future__ import annotations

import pytest

from codemonkeys.diffs import file_sections, named_paths, touched_files, unquote_path
from codemonkeys.problem import Gold
from codemonkeys.sandbox.patching import check_patch_paths
from codemonkeys.selection.patches import strip_test_file_edits

# What git writes for a non-ASCII name (core.quotePath) and what other tools write for a
# name with a space; the second file is a test module at the top level.
QUOTED = (
    'diff --git "a/src/with space.py" "b/src/with space.py"\n'
    '--- "a/src/with space.py"\n'
    '+++ "b/src/with space.py"\n'
    "@@ -1 +1 @@\n"
    "-x = 1\n"
    "+x = 2\n"
    'diff --git "a/test_caf\\303\\251.py" "b/test_caf\\303\\251.py"\n'
    "new file mode 100644\n"
    "--- /dev/null\n"
    '+++ "b/test_caf\\303\\251.py"\n'
    "@@ -0,0 +1 @@\n"
    "+assert True\n"
)


def test_gold_edited_files_reads_quoted_paths():
    # Context recall and the report's gold files come from here.
    assert Gold(patch=QUOTED).edited_files() == ["src/with space.py", "test_café.py"]


def test_selection_strips_a_quoted_test_file_and_keeps_the_fix():
    out, removed = strip_test_file_edits(QUOTED, ["tests"])
    assert removed == ["test_café.py"]
    assert touched_files(out) == ["src/with space.py"]
    assert "+x = 2" in out and "assert True" not in out


def test_sandbox_patch_check_reads_quoted_paths():
    paths, refusal = check_patch_paths(QUOTED)
    assert refusal is None
    assert paths == ["src/with space.py", "test_café.py"]


def test_git_unquoted_names_with_spaces_and_tab_terminated_markers():
    # What git itself writes for a name with a space (no quotes; a tab after the name).
    patch = (
        "diff --git a/new space.py b/new space.py\n"
        "new file mode 100644\n"
        "--- /dev/null\n"
        "+++ b/new space.py\t\n"
        "@@ -0,0 +1 @@\n"
        "+b\n"
        "diff --git a/old one.py b/old one.py\n"
        "deleted file mode 100644\n"
        "--- a/old one.py\t\n"
        "+++ /dev/null\n"
        "@@ -1 +0,0 @@\n"
        "-a\n"
    )
    assert touched_files(patch) == ["new space.py", "old one.py"]
    assert Gold(patch=patch).edited_files() == ["new space.py", "old one.py"]


def test_renames_binary_sections_and_plain_diffs():
    rename = "diff --git a/old.py b/new.py\nsimilarity index 100%\nrename from old.py\nrename to new.py\n"
    binary = (
        'diff --git "a/\\303\\251.bin" "b/\\303\\251.bin"\nGIT binary patch\nliteral 1\nIc${\n\n'
    )
    plain = (
        "--- x.py.orig\t2024-01-01 00:00:00\n+++ x.py\t2024-01-01 00:00:01\n@@ -1 +1 @@\n-a\n+b\n"
    )
    assert touched_files(rename) == ["new.py"]
    assert touched_files(binary) == ["é.bin"]
    assert touched_files(plain) == ["x.py"]
    assert [p for p, _ in file_sections("From: me\n\n" + rename)] == ["", "new.py"]
    assert ("old.py", False) in named_paths(rename)


@pytest.mark.parametrize(
    ("quoted", "plain"),
    [
        ('"a/caf\\303\\251.py"', "a/café.py"),
        ('"a/q\\"uote.py"', 'a/q"uote.py'),
        ('"a/tab\\tx.py"', "a/tab\tx.py"),
        ('"a/back\\\\slash"', "a/back\\slash"),
        ("a/plain.py", "a/plain.py"),
    ],
)
def test_unquote_path(quoted, plain):
    assert unquote_path(quoted) == plain


def test_renamed_file_with_spaces_is_named_by_its_rename_line():
    patch = (
        "diff --git a/old name.py b/new name.py\n"
        "similarity index 100%\n"
        "rename from old name.py\n"
        "rename to new name.py\n"
    )
    assert touched_files(patch) == ["new name.py"]
    assert check_patch_paths(patch) == (["old name.py", "new name.py"], None)
