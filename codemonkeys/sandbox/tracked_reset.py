"""Reset that looks only at what changed since the last one (the Docker sandbox).

``git clean`` of the whole tree and a ``find`` over it (to give the files git rewrote back
to the script user) cost a walk of every directory each, on every reset: as much as the
``git reset --hard`` itself on a real repository. Yet every change a script can make to
the work tree is already seen once, at the end of its run: the disk check (``cm_track`` in
``agent.RUN_LIB``) walks the tree after the script user's processes are killed, and lists
every entry whose ctime is newer than the run's start, 20 ms early for the coarse clock:
the script user's entries (whatever it created, wrote, renamed or linked is its own, and it
cannot set a ctime) and the directories whose entries changed (a removed file). Patches
list the paths they wrote. So reset cleans and re-owns just those paths; what it re-owns
starts the next list (a chown changes the ctime git's index holds, so the next reset
rewrites those files, root's again, even if nothing touched them).

The list (``agent.TOUCHED_LIST``) is trusted only while ``TOUCHED_STATE`` says ``ok``:
a run marks it open first and closes it only after a complete walk that began with no
process of the script user alive (zombies write nothing, and only a run starts new ones);
reset marks it open until it is done. Anything
else means the whole tree is cleaned as before: a list missing, cut short or over
``MAX_TOUCHED`` entries, a root command of the caller's (``_sh`` from outside these
methods, ``write_file`` into the tree), an old bash without ``mapfile -d``.
"""

from __future__ import annotations

import contextlib
import shlex
from collections.abc import Iterator
from pathlib import Path

from codemonkeys.sandbox.agent import TOUCHED_LIST, TOUCHED_STATE
from codemonkeys.sandbox.base import PatchResult
from codemonkeys.sandbox.common import ShellGitSandbox
from codemonkeys.sandbox.container import (
    after_apply_script,
    kill_strays_script,
    reset_extra_script,
)

MAX_TOUCHED = 2000
"""More changed entries than this since the last reset: clean the whole tree instead."""


def touched_clean_script(uid: int, workdir: str, keep_args: str, whole: bool) -> str:
    """Shell run by reset after ``git reset --hard``: remove the untracked files, and give
    the files git rewrote (as root: root-owned, written since ``$RESET_SINCE``) back to the
    sandbox user. Only what changed since the last reset is looked at when that is known
    (``TOUCHED_LIST``, kept by every run and patch, valid while ``TOUCHED_STATE`` says
    ``ok``): ``git clean`` of just those paths and a chown of them and of the entries of
    the directories that changed. A new file is always the script user's and newer than
    its run's start (it cannot set a ctime), a removed one changes its directory; so the
    list holds every path reset must look at. Otherwise (``whole``: a root command of the
    host wrote in the tree; the list missing, cut short or too long) the whole tree: a
    chown changes a file's ctime, so never re-own files git did not rewrite (the next
    reset would re-read them all)."""
    u = uid
    # what it re-owns starts the next list: the chown changed their ctime, so the next
    # `git reset --hard` rewrites them (root's again) even if no script touched them
    chown = (
        f'! -type d ! -user {u} -newermt "@$RESET_SINCE" -exec chown -h {u}:{u} -- {{}} + '
        f"-printf 'c%p\\0' >> {TOUCHED_LIST}"
    )
    return (
        f"WD={shlex.quote(workdir)}; st=; {'' if whole else f'read -r st < {TOUCHED_STATE} 2>/dev/null; '}echo reset > {TOUCHED_STATE}\n"
        "own=(); chg=(); dirs=(); declare -A seen\n"
        f'if [ "$st" = ok ] && mapfile -d "" -t ent < {TOUCHED_LIST} && [ ${{#ent[@]}} -le {MAX_TOUCHED} ]; then\n'
        '  for e in "${ent[@]}"; do p=${e:1}; p=${p#"$WD"/}; [ "$p" = "$WD" ] && p=.; case $p in /*) st=;; esac\n'
        '    while [ "${p#./}" != "$p" ]; do p=${p#./}; done; [ -n "$p" ] || st=; [ -n "${seen[${e:0:1}$p]}" ] && continue; seen[${e:0:1}$p]=1\n'
        '    case $e in o*) own+=("./$p");; c*) chg+=("./$p");; d*) dirs+=("./$p");; *) st=;; esac; done\n'
        "else st=; fi\n"
        f": > {TOUCHED_LIST} || exit 1\n"
        'if [ "$st" = ok ]; then\n'
        # a path inside a listed directory goes with it (git clean leaves a directory whose
        # contents a pathspec names)
        '  declare -A listed; for p in "${own[@]}"; do listed[$p]=1; done; top=()\n'
        '  for p in "${own[@]}"; do a=$p; while [ "${a%/*}" != "$a" ]; do a=${a%/*}; [ -n "${listed[$a]}" ] && continue 2; done; top+=("$p"); done\n'
        f'  if [ ${{#top[@]}} -gt 0 ]; then GIT_LITERAL_PATHSPECS=1 git clean -ffdqx {keep_args} -- "${{top[@]}}" || exit 1; fi\n'
        '  set -- "${own[@]}" "${chg[@]}" "${dirs[@]}"\n'
        f'  if [ $# -gt 0 ]; then find "$@" -maxdepth 1 {chown} 2>/dev/null; fi; true\n'
        "else\n"
        f"  git clean -ffdqx {keep_args} || exit 1\n"
        f"  find . -xdev -path ./.git -prune -o {chown} || exit 1\n"
        "fi\n"
    )


class TrackedReset(ShellGitSandbox):
    """ShellGitSandbox whose reset cleans only what changed, when that is known."""

    uid: int
    _tree_written: bool = True
    """A root command not of ours may have written in the work tree since the last reset:
    the next one cleans the whole tree."""
    _trusted: int = 0
    """Inside a call of ours that writes no untracked file as root (or lists it)."""

    @contextlib.contextmanager
    def _trusted_calls(self) -> Iterator[None]:
        self._trusted += 1
        try:
            yield
        finally:
            self._trusted -= 1

    def _note_root_command(self) -> None:
        """Called by every root command: one of the caller's may change anything."""
        if not self._trusted:
            self._tree_written = True

    def apply_patch(self, patch: str) -> PatchResult:
        with self._trusted_calls():
            result = super().apply_patch(patch)
        if not result.ok:  # a failed attempt may leave what it made (a directory)
            self._tree_written = True
        return result

    def diff(self) -> str:
        with self._trusted_calls():
            return super().diff()

    def reset(self) -> None:
        with self._trusted_calls():
            super().reset()

    def export_repo(self, dest: Path) -> list[str]:
        with self._trusted_calls():
            return super().export_repo(dest)

    def _kill_strays(self) -> str:
        return kill_strays_script(self.uid)

    def _reset_extra(self) -> str:
        return reset_extra_script(self.uid)

    def _after_apply(self) -> str:
        return after_apply_script(self.uid)

    def _clean_script(self) -> str:
        whole, self._tree_written = self._tree_written, False
        return touched_clean_script(self.uid, self.workdir, self._keep_args("-e"), whole)
