"""The user's checkout: snapshots and fix branches never touch the working tree, index or
current branch, and uncommitted work is never lost."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from codemonkeys.localrepo import (
    LocalRepoError,
    UncommittedChangesError,
    export_tree,
    open_repo,
)
from tests.conftest import make_git_repo

FILES = {
    "calc/__init__.py": "",
    "calc/ops.py": "def add(a, b):\n    return a - b\n",
    "README.md": "calc\n",
    ".gitignore": "*.log\n",
}
FIX = """diff --git a/calc/ops.py b/calc/ops.py
--- a/calc/ops.py
+++ b/calc/ops.py
@@ -1,2 +1,2 @@
 def add(a, b):
-    return a - b
+    return a + b
"""


def git(path: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=path, check=True, capture_output=True, text=True
    ).stdout


def state(path: Path) -> tuple[str, str, str, str]:
    """Everything the user can see of their checkout: status, index, current branch, HEAD."""
    return (
        git(path, "status", "--porcelain", "--untracked-files=all"),
        git(path, "ls-files", "--stage"),
        git(path, "rev-parse", "--abbrev-ref", "HEAD"),
        git(path, "rev-parse", "HEAD"),
    )


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    repo = tmp_path / "proj"
    make_git_repo(repo, FILES)
    return repo


def test_open_repo_outside_git_is_a_clear_error(tmp_path: Path):
    with pytest.raises(LocalRepoError, match="not inside a git checkout"):
        open_repo(tmp_path)
    with pytest.raises(LocalRepoError, match="does not exist"):
        open_repo(tmp_path / "missing")
    (tmp_path / "f.txt").write_text("x")
    with pytest.raises(LocalRepoError, match="not a directory"):
        open_repo(tmp_path / "f.txt")


def test_open_repo_without_commits(tmp_path: Path):
    git(tmp_path, "init", "-q")
    repo = open_repo(tmp_path)
    with pytest.raises(LocalRepoError, match="no commits yet"):
        repo.base_commit()


def test_open_repo_top_level_and_subdirectory(checkout: Path):
    top = open_repo(checkout)
    assert top.subdir == "" and top.root == checkout.resolve()
    sub = open_repo(checkout / "calc")
    assert sub.subdir == "calc" and sub.root == checkout.resolve()
    assert sub.path == (checkout / "calc").resolve()


def test_clean_checkout_solves_against_head(checkout: Path):
    repo = open_repo(checkout)
    assert repo.base_commit() == git(checkout, "rev-parse", "HEAD").strip()


def test_uncommitted_changes_are_refused_with_listing_and_options(checkout: Path):
    (checkout / "calc/ops.py").write_text("def add(a, b):\n    return b - a\n")
    (checkout / "notes.txt").write_text("todo\n")
    (checkout / "debug.log").write_text("ignored\n")
    before = state(checkout)
    with pytest.raises(UncommittedChangesError) as err:
        open_repo(checkout).base_commit(include_uncommitted=False)
    msg = str(err.value)
    assert "calc/ops.py" in msg and "notes.txt" in msg
    assert "debug.log" not in msg  # ignored files are not the user's work
    assert "--include-uncommitted" in msg and "stash" in msg
    assert state(checkout) == before
    assert (checkout / "calc/ops.py").read_text() == "def add(a, b):\n    return b - a\n"


def test_include_uncommitted_snapshots_without_touching_anything(checkout: Path):
    (checkout / "calc/ops.py").write_text("def add(a, b):\n    return b - a\n")
    (checkout / "README.md").write_text("staged\n")
    git(checkout, "add", "README.md")
    (checkout / "calc/new.py").write_text("NEW = 1\n")
    (checkout / "debug.log").write_text("ignored\n")
    git(checkout, "rm", "-q", "--cached", "calc/__init__.py")  # a staged deletion, file kept
    before = state(checkout)
    head = before[3].strip()

    snap = open_repo(checkout).base_commit(include_uncommitted=True)

    assert state(checkout) == before
    assert snap != head
    assert git(checkout, "rev-parse", f"{snap}^").strip() == head
    assert git(checkout, "show", f"{snap}:calc/ops.py") == "def add(a, b):\n    return b - a\n"
    assert git(checkout, "show", f"{snap}:calc/new.py") == "NEW = 1\n"
    assert git(checkout, "show", f"{snap}:README.md") == "staged\n"
    tracked = git(checkout, "ls-tree", "-r", "--name-only", snap).split()
    assert "debug.log" not in tracked
    # the working tree is the snapshot's truth: calc/__init__.py still exists on disk
    assert "calc/__init__.py" in tracked
    assert snap not in git(checkout, "for-each-ref", "--format=%(objectname)")


def test_subdir_only_considers_its_own_changes(checkout: Path):
    (checkout / "README.md").write_text("changed outside the package\n")
    sub = open_repo(checkout / "calc")
    assert sub.base_commit() == git(checkout, "rev-parse", "HEAD").strip()
    (checkout / "calc/ops.py").write_text("# edited\n")
    with pytest.raises(UncommittedChangesError, match="calc/ops.py"):
        sub.base_commit()
    snap = sub.base_commit(include_uncommitted=True)
    assert git(checkout, "show", f"{snap}:calc/ops.py") == "# edited\n"
    assert git(checkout, "show", f"{snap}:README.md") == "calc\n"  # outside: as at HEAD


def test_apply_on_branch_creates_branch_and_commit_leaving_worktree_intact(checkout: Path):
    repo = open_repo(checkout)
    base = repo.base_commit()
    (checkout / "calc/ops.py").write_text("def add(a, b):\n    return a - b  # my edit\n")
    (checkout / "scratch.txt").write_text("wip\n")
    before = state(checkout)

    branch, sha = repo.apply_on_branch(FIX, base_commit=base, message="Fix add()")

    assert state(checkout) == before
    assert (checkout / "calc/ops.py").read_text().endswith("# my edit\n")
    assert branch.startswith("codemonkeys/")
    assert git(checkout, "rev-parse", branch).strip() == sha
    assert git(checkout, "rev-parse", f"{sha}^").strip() == base
    assert git(checkout, "log", "-1", "--format=%s", sha).strip() == "Fix add()"
    assert git(checkout, "show", f"{sha}:calc/ops.py") == "def add(a, b):\n    return a + b\n"
    assert git(checkout, "worktree", "list", "--porcelain").count("worktree ") == 1


def test_apply_on_branch_refuses_existing_branch_and_bad_patch(checkout: Path):
    repo = open_repo(checkout)
    base = repo.base_commit()
    git(checkout, "branch", "taken")
    with pytest.raises(LocalRepoError, match="already exists"):
        repo.apply_on_branch(FIX, base_commit=base, branch_name="taken", message="m")
    with pytest.raises(LocalRepoError, match="not a valid git branch name"):
        repo.apply_on_branch(FIX, base_commit=base, branch_name="bad..name", message="m")
    broken = FIX.replace("return a - b", "return a * b")
    with pytest.raises(LocalRepoError, match="does not apply"):
        repo.apply_on_branch(broken, base_commit=base, branch_name="fix", message="m")
    assert "fix" not in git(checkout, "branch", "--format=%(refname:short)").split()
    assert git(checkout, "worktree", "list", "--porcelain").count("worktree ") == 1
    assert state(checkout)[0] == ""


def test_apply_on_branch_from_a_snapshot_commit(checkout: Path):
    (checkout / "calc/extra.py").write_text("X = 1\n")
    repo = open_repo(checkout)
    snap = repo.base_commit(include_uncommitted=True)
    branch, sha = repo.apply_on_branch(FIX, base_commit=snap, branch_name="fix-it", message="m")
    assert branch == "fix-it"
    assert git(checkout, "show", f"{sha}:calc/extra.py") == "X = 1\n"
    assert git(checkout, "status", "--porcelain") == "?? calc/extra.py\n"


def test_subdir_patch_paths_are_relative_to_the_package(checkout: Path):
    sub = open_repo(checkout / "calc")
    base = sub.base_commit()
    patch = FIX.replace("calc/ops.py", "ops.py")
    _branch, sha = sub.apply_on_branch(patch, base_commit=base, message="m")
    assert git(checkout, "show", f"{sha}:calc/ops.py").endswith("return a + b\n")
    assert git(checkout, "diff", "--name-only", base, sha).split() == ["calc/ops.py"]


def test_export_tree_of_subdir_at_commit(checkout: Path, tmp_path: Path):
    sub = open_repo(checkout / "calc")
    (checkout / "calc/ops.py").write_text("# uncommitted\n")
    head = git(checkout, "rev-parse", "HEAD").strip()
    dest = tmp_path / "export"
    assert export_tree(sub, head, dest) == ["__init__.py", "ops.py"]
    assert (dest / "ops.py").read_text() == FILES["calc/ops.py"]
    snap = sub.base_commit(include_uncommitted=True)
    dest2 = tmp_path / "export2"
    assert sub.export_tree(snap, dest2) == ["__init__.py", "ops.py"]
    assert (dest2 / "ops.py").read_text() == "# uncommitted\n"


def test_a_snapshot_of_the_same_work_is_the_same_commit_whenever_taken(checkout, monkeypatch):
    """`solve --include-uncommitted` run twice must find its own run again: the snapshot
    commit depends on the tree and HEAD, not on the clock."""
    (checkout / "calc/ops.py").write_text("def add(a, b):\n    return b - a\n")
    repo = open_repo(checkout)
    monkeypatch.setenv("GIT_COMMITTER_DATE", "2026-01-01T10:00:00Z")  # the clock moves on
    monkeypatch.setenv("GIT_AUTHOR_DATE", "2026-01-01T10:00:00Z")
    first = repo.base_commit(include_uncommitted=True)
    monkeypatch.setenv("GIT_COMMITTER_DATE", "2026-01-01T10:05:00Z")
    monkeypatch.setenv("GIT_AUTHOR_DATE", "2026-01-01T10:05:00Z")
    assert repo.base_commit(include_uncommitted=True) == first
    (checkout / "calc/ops.py").write_text("def add(a, b):\n    return a + b  # fixed\n")
    assert repo.base_commit(include_uncommitted=True) != first  # other work, other commit
