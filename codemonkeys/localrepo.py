"""The user's own git checkout in ``solve`` mode: where the problem's code comes from and
where the chosen patch goes back to.

Two promises shape this module: the user's work is never lost, and the user's working
tree, index and current branch are never touched. So a snapshot of uncommitted work is a
commit object built through a *temporary* index (no branch, no ref moves), and the fix is
committed through another temporary index onto a new branch, never in the user's checkout.

A repository path may be a subdirectory of a git checkout (one package of a monorepo);
``subdir`` records where it sits below the git top level. Everything the rest of the
pipeline sees (file lists, patches) is relative to that subdirectory.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import git

from codemonkeys.errors import CodemonkeysError
from codemonkeys.sandbox.base import SandboxError
from codemonkeys.sandbox.gittree import export_host_tree
from codemonkeys.tempdirs import temp_dir

# Used only when the user has no git identity configured, so a snapshot or fix commit
# never fails on a fresh machine; the user's own identity always wins.
_FALLBACK_IDENTITY = {"name": "codemonkeys", "email": "codemonkeys@localhost"}


class LocalRepoError(CodemonkeysError, RuntimeError):
    """A problem with the user's repository that the user can fix; the message says how."""


class UncommittedChangesError(LocalRepoError):
    """The checkout has uncommitted changes and the user did not ask to include them."""

    def __init__(self, changed: list[str], where: str):
        self.changed = changed
        shown = "\n".join(f"  {line}" for line in changed[:30])
        more = f"\n  ... and {len(changed) - 30} more" if len(changed) > 30 else ""
        super().__init__(
            f"{where} has uncommitted changes:\n{shown}{more}\n"
            "codemonkeys works on a commit, so these would be ignored. Either:\n"
            "  - pass --include-uncommitted to solve against your working tree as it is now\n"
            "    (a snapshot commit is made without touching your files, index or branch), or\n"
            "  - commit or stash them first (git commit / git stash)."
        )


@dataclass
class LocalRepo:
    root: Path
    """The git top level."""
    subdir: str
    """Where the user's project sits below ``root`` (posix, no trailing slash); "" for the
    top level."""
    repo: git.Repo = field(repr=False)

    @property
    def path(self) -> Path:
        """The directory the user pointed at."""
        return self.root / self.subdir if self.subdir else self.root

    @property
    def label(self) -> str:
        """A readable problem label: the checkout's directory name (+ subdir)."""
        return f"{self.root.name}/{self.subdir}" if self.subdir else self.root.name

    # ------------------------------------------------------------------ inspection

    def head_commit(self) -> str:
        try:
            return self.repo.head.commit.hexsha
        except ValueError as e:  # unborn HEAD: no commit yet
            raise LocalRepoError(
                f"{self.root} has no commits yet; commit your code first (git add -A && git commit)"
            ) from e

    def _pathspec(self) -> list[str]:
        return [f":(top){self.subdir}" if self.subdir else ":/"]

    def changed_files(self) -> list[str]:
        """``git status --porcelain`` lines (status + path relative to the git top level)
        for the project's directory, untracked non-ignored files included."""
        out = self._git(
            "status",
            "--porcelain=v1",
            "-z",
            "--untracked-files=all",
            "--",
            *self._pathspec(),
        )
        lines: list[str] = []
        entries = out.split("\0")
        i = 0
        while i < len(entries):
            entry = entries[i]
            i += 1
            if not entry:
                continue
            status, path = entry[:2], entry[3:]
            if status[0] in "RC":  # rename/copy: the next entry is the source path
                source = entries[i] if i < len(entries) else ""
                i += 1
                path = f"{source} -> {path}"
            lines.append(f"{status} {path}")
        return lines

    def base_commit(self, include_uncommitted: bool = False) -> str:
        """The commit to solve against: HEAD, or a snapshot of the working tree.

        With uncommitted changes and ``include_uncommitted`` False this refuses
        (``UncommittedChangesError``) rather than silently solving against code the user
        is no longer looking at."""
        head = self.head_commit()
        changed = self.changed_files()
        if not changed:
            return head
        if not include_uncommitted:
            raise UncommittedChangesError(changed, str(self.path))
        return self.snapshot_commit(head)

    def snapshot_commit(self, parent: str | None = None) -> str:
        """A commit (no branch, no ref) holding HEAD plus the working tree's state of the
        project directory, untracked non-ignored files included. Built through a temporary
        index, so the user's index, working tree and branches are untouched.

        Deterministic: its dates are the parent's commit date, so the same working tree
        on the same HEAD is the same commit whenever it is taken, and a rerun of
        ``solve --include-uncommitted`` resumes its run."""
        parent = parent or self.head_commit()
        with temp_dir("index") as tmp:
            env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
            self._git("read-tree", parent, env=env)
            self._git("add", "-A", "--", *self._pathspec(), env=env)
            tree = self._git("write-tree", env=env).strip()
        date = self._git("log", "-1", "--format=%cd", "--date=raw", parent).strip()
        return self._git(
            "commit-tree",
            tree,
            "-p",
            parent,
            "-m",
            "codemonkeys: snapshot of uncommitted changes",
            env={**self._identity_env(), "GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date},
        ).strip()

    def has_commit(self, sha: str) -> bool:
        try:
            self._git("cat-file", "-e", f"{sha}^{{commit}}")
            return True
        except LocalRepoError:
            return False

    # ------------------------------------------------------------------ export

    def export_tree(self, commit: str, dest: Path) -> list[str]:
        """See ``export_tree``."""
        return export_tree(self, commit, dest)

    # ------------------------------------------------------------------ applying a fix

    def branch_exists(self, name: str) -> bool:
        return f"refs/heads/{name}" in {r.path for r in self.repo.references}

    def apply_on_branch(
        self,
        patch: str,
        *,
        base_commit: str,
        branch_name: str | None = None,
        message: str,
    ) -> tuple[str, str]:
        """Commit ``patch`` (paths relative to ``subdir``) on a new branch starting at
        ``base_commit``; returns (branch, commit sha).

        The patch is applied to a *temporary index* read from ``base_commit`` (``git apply
        --cached``) and committed with ``commit-tree``: no checkout, so the user's working
        tree, index and current branch are never touched, no hooks or checkout filters run,
        and the patch meets the exact blobs the sandbox saw. The branch is created only
        once the commit exists, so a patch that does not apply leaves no trace."""
        if not patch.strip():
            raise LocalRepoError("the patch is empty; nothing to apply")
        if not self.has_commit(base_commit):
            raise LocalRepoError(f"base commit {base_commit} does not exist in {self.root}")
        if branch_name is None:
            branch_name = self._free_branch_name(base_commit)
        else:
            self._check_branch_name(branch_name)
            if self.branch_exists(branch_name):
                raise LocalRepoError(
                    f"branch {branch_name!r} already exists in {self.root}; "
                    "choose another name (or delete it first)"
                )
        if not patch.endswith("\n"):
            patch += "\n"

        with temp_dir("apply") as tmp:
            patch_file = Path(tmp) / "fix.patch"
            patch_file.write_text(patch)
            env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
            self._git("read-tree", base_commit, env=env)
            args = ["apply", "--cached", "--whitespace=nowarn"]
            if self.subdir:
                args.append(f"--directory={self.subdir}")
            try:
                self._git(*args, str(patch_file), env=env)
            except LocalRepoError as e:
                detail = str(e).split(": ", 1)[-1]
                raise LocalRepoError(
                    f"the patch does not apply to {base_commit[:12]}:\n{detail}"
                ) from None
            tree = self._git("write-tree", env=env).strip()
        if tree == self._git("rev-parse", f"{base_commit}^{{tree}}").strip():
            raise LocalRepoError("the patch changes nothing at the base commit")
        sha = self._git(
            "commit-tree", tree, "-p", base_commit, "-m", message, env=self._identity_env()
        ).strip()
        # The only ref we touch, and only once the commit exists: a failure leaves no trace.
        self._git("branch", branch_name, sha)
        return branch_name, sha

    def _free_branch_name(self, base_commit: str) -> str:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        name = f"codemonkeys/fix-{base_commit[:8]}-{stamp}"
        candidate, n = name, 2
        while self.branch_exists(candidate):
            candidate, n = f"{name}-{n}", n + 1
        return candidate

    def _check_branch_name(self, name: str) -> None:
        try:
            self._git("check-ref-format", "--branch", name)
        except LocalRepoError:
            raise LocalRepoError(f"{name!r} is not a valid git branch name") from None

    # ------------------------------------------------------------------ plumbing

    def _identity_env(self) -> dict[str, str]:
        """Author/committer env vars for the fallback identity, only where the user has
        none configured (env vars or git config)."""
        env: dict[str, str] = {}
        reader = self.repo.config_reader()
        for key in ("name", "email"):
            configured = reader.get_value("user", key, default="")
            for role in ("AUTHOR", "COMMITTER"):
                var = f"GIT_{role}_{key.upper()}"
                if not configured and not os.environ.get(var):
                    env[var] = _FALLBACK_IDENTITY[key]
        return env

    def _git(self, *args: str, env: dict[str, str] | None = None) -> str:
        try:
            if env:
                with self.repo.git.custom_environment(**env):
                    return self.repo.git.execute(["git", *args], strip_newline_in_stdout=False)
            return self.repo.git.execute(["git", *args], strip_newline_in_stdout=False)
        except git.GitCommandError as e:
            raise LocalRepoError(f"git {' '.join(args[:2])} failed: {_stderr(e)}") from None


def _stderr(e: git.GitCommandError) -> str:
    text = (e.stderr or "").strip()
    text = re.sub(r"^stderr: ?'?", "", text).rstrip("'").strip()
    return text or str(e)


def open_repo(path: str | Path) -> LocalRepo:
    """Open the git checkout containing ``path`` (which may be a subdirectory of it)."""
    p = Path(path).expanduser()
    if not p.exists():
        raise LocalRepoError(f"{p} does not exist")
    if not p.is_dir():
        raise LocalRepoError(f"{p} is not a directory; --repo takes the project's directory")
    p = p.resolve()
    try:
        repo = git.Repo(p, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise LocalRepoError(
            f"{p} is not inside a git checkout. codemonkeys solves against a commit and "
            "applies fixes on a new branch; run `git init && git add -A && git commit -m init` "
            "there first."
        ) from None
    if repo.bare or repo.working_tree_dir is None:
        raise LocalRepoError(f"{p} is a bare git repository; point --repo at a checkout")
    root = Path(repo.working_tree_dir).resolve()
    try:
        rel = p.relative_to(root)
    except ValueError:  # e.g. inside .git
        raise LocalRepoError(f"{p} is not inside the working tree of {root}") from None
    if rel.parts and rel.parts[0] == ".git":
        raise LocalRepoError(f"{p} is inside {root}/.git; point --repo at the project")
    subdir = rel.as_posix() if rel.parts else ""
    return LocalRepo(root=root, subdir=subdir, repo=repo)


def export_tree(repo: LocalRepo, commit: str, dest: Path, subdir: str | None = None) -> list[str]:
    """Write the files tracked at ``commit`` below ``subdir`` (default: the repo's) into
    ``dest`` and return their paths relative to ``subdir``, sorted.

    Reads blobs straight from the object store (``ls-tree`` + ``cat-file --batch``, the
    sandbox's own reader), so it works for snapshot commits, keeps ``export-ignore`` files
    and never depends on the working tree."""
    subdir = repo.subdir if subdir is None else subdir.strip("/")
    try:
        return export_host_tree(repo.root, commit, Path(dest), subdir or None)
    except SandboxError as e:
        raise LocalRepoError(str(e)) from None
