"""Reset that looks only at what changed since the last one (the Docker sandbox).

``git reset --hard``, ``git clean`` of the whole tree and a ``find`` over it (to give the
files git rewrote back to the script user) each stat every file, on every reset: their cost
grows with the tree, whatever the script did. Yet every change a script can make to
the work tree is already seen once, at the end of its run: the disk check (``cm_track`` in
``agent.RUN_LIB``) walks the tree after the script user's processes are killed, and lists
every entry whose ctime is newer than the run's start, 20 ms early for the coarse clock:
the script user's entries (whatever it created, wrote, renamed or linked is its own, and it
cannot set a ctime) and the directories whose entries changed (a removed file). Patches
list the paths they wrote. So reset cleans, restores from the base commit and re-owns just
those paths (``touched_restore_script``), and git's stat cache stays valid for the rest.
The Python agent (``agent_server``) keeps the same list from inotify instead of the walk,
and resets and patches in process when it can (``reset``/``apply`` requests, which carry
this module's scripts for when it cannot).

The list (``agent.TOUCHED_LIST``) is trusted only while ``TOUCHED_STATE`` says ``ok``:
a run marks it open first and closes it only after a complete walk that began with no
process of the script user alive (zombies write nothing, and only a run starts new ones);
reset marks it open until it is done. Anything
else means the whole tree is cleaned as before: a list missing, cut short or over
``MAX_TOUCHED`` entries, a root command of the caller's (``_sh`` from outside these
methods, ``write_file`` into the tree), an old bash without ``mapfile -d``.
"""

from __future__ import annotations

import base64
import contextlib
import contextvars
import json
import shlex
from collections.abc import Iterator
from pathlib import Path

from codemonkeys.sandbox.agent import (
    MAX_TOUCHED,
    TOUCHED_LIST,
    TOUCHED_STATE,
    WHOLE_RESET_MARK,
)
from codemonkeys.sandbox.base import PatchResult
from codemonkeys.sandbox.common import ShellGitSandbox
from codemonkeys.sandbox.container import (
    after_apply_script,
    kill_strays_script,
    reset_extra_script,
)

_REQUEST: contextvars.ContextVar[tuple[object, str, str] | None] = contextvars.ContextVar(
    "codemonkeys_agent_request", default=None
)
"""(sandbox, kind, extra) of the command the current thread is making (``_as_request``)."""


def touched_restore_script(
    uid: int, workdir: str, base: str, keep_args: str, scratch: str, whole: bool, full: str
) -> str:
    """Shell run by reset: the work tree back to ``base`` and the sandbox user's again.

    When the list of what changed is known complete (``TOUCHED_LIST``, kept by every run
    and patch, valid while ``TOUCHED_STATE`` says ``ok``), only those paths: ``git clean``
    of the listed new entries; the base's files under the listed paths, and those missing
    from the listed directories, written again from the index (which holds the base: see
    ``TrackedReset.apply_patch``) and given back to the sandbox user. That covers every
    change a script can make: a new or rewritten file is its own and newer than its run's
    start (it cannot set a ctime); a removed one changes its directory, and directories are
    root's and sticky, so none of them can go. Nothing else is read, so the cost follows
    what changed, not the size of the tree, and git's stat cache stays valid for every
    file not rewritten.

    Otherwise (``whole``: a root command of the caller's wrote in the tree; the list
    missing, cut short or too long; a directory of the base gone) ``full``, the reset of
    the whole tree every sandbox has (``ShellGitSandbox._restore_script``: ``git reset
    --hard``, ``git clean``), and the files git rewrote (root's, written since
    ``$RESET_SINCE``) re-owned: a chown changes a file's ctime, so never others."""
    u, b = uid, shlex.quote(base)
    chown = f'! -type d ! -user {u} -newermt "@$RESET_SINCE" -exec chown -h {u}:{u} -- {{}} +'
    return (
        f"WD={shlex.quote(workdir)}; RS={shlex.quote(scratch)}/restore; st=; "
        f"{'' if whole else f'read -r st < {TOUCHED_STATE} 2>/dev/null; '}echo reset > {TOUCHED_STATE}\n"
        "own=(); chg=(); dirs=(); declare -A seen\n"
        f'if [ "$st" = ok ] && mapfile -d "" -t ent < {TOUCHED_LIST} && [ ${{#ent[@]}} -le {MAX_TOUCHED} ]; then\n'
        '  for e in "${ent[@]}"; do p=${e:1}; p=${p#"$WD"/}; [ "$p" = "$WD" ] && p=.; case $p in /*) st=;; esac\n'
        '    while [ "${p#./}" != "$p" ]; do p=${p#./}; done; [ -n "$p" ] || st=; [ -n "${seen[${e:0:1}$p]}" ] && continue; seen[${e:0:1}$p]=1\n'
        '    case $e in o*) own+=("./$p");; c*) chg+=("./$p");; d*) dirs+=("./$p");; *) st=;; esac; done\n'
        "else st=; fi\n"
        f": > {TOUCHED_LIST} || exit 1\n"
        'if [ "$st" = ok ]; then\n'
        + _untracked_clean(keep_args)
        + _tracked_restore(b)
        + f'  if [ ${{#rs[@]}} -gt 0 ]; then chown -h {u}:{u} -- "${{rs[@]}}" || exit 1; fi\n'
        "fi\n"
        'if [ "$st" != ok ]; then\n'
        f"  echo {WHOLE_RESET_MARK}\n"
        + full
        + f"  find . -xdev -path ./.git -prune -o {chown} || exit 1\n"
        "fi\n"
    )


def _untracked_clean(keep_args: str) -> str:
    """The listed new entries go (``git clean`` of the top-most ones: it leaves a
    directory whose contents a pathspec names); tracked ones are left to the restore."""
    return (
        '  declare -A listed; for p in "${own[@]}"; do listed[$p]=1; done; top=()\n'
        '  for p in "${own[@]}"; do a=$p; while [ "${a%/*}" != "$a" ]; do a=${a%/*}; [ -n "${listed[$a]}" ] && continue 2; done; top+=("$p"); done\n'
        f'  if [ ${{#top[@]}} -gt 0 ]; then GIT_LITERAL_PATHSPECS=1 git clean -ffdqx {keep_args} -- "${{top[@]}}" || exit 1; fi\n'
    )


def _tracked_restore(base: str) -> str:
    """``rs``: the base's files under the listed entries, and the base's entries missing
    from the listed directories, written again from the index (``checkout-index``: it
    reads nothing else). A directory of the base that is gone (root's, so no script
    removed it) makes the reset a whole one (``st``)."""
    return (
        "  rs=(); TAB=$'\\t'; : > \"$RS\" || exit 1\n"
        "  if [ $((${#own[@]} + ${#chg[@]})) -gt 0 ]; then\n"
        f'    git --literal-pathspecs ls-tree -r -z {base} -- "${{own[@]}}" "${{chg[@]}}" > "$RS" || exit 1; fi\n'
        '  while IFS= read -r -d \'\' e; do m=${e%% *}; [ "$m" = 160000 ] || rs+=("./${e#*$TAB}"); done < "$RS"\n'
        "  if [ ${#dirs[@]} -gt 0 ]; then\n"
        f'    git --literal-pathspecs ls-tree -z {base} -- "${{dirs[@]/%//}}" > "$RS" || exit 1\n'
        "    while IFS= read -r -d '' e; do m=${e%% *}; f=./${e#*$TAB}\n"
        '      [ "$m" = 160000 ] || [ -e "$f" ] || [ -L "$f" ] || { [ "$m" = 040000 ] && st=; } || rs+=("$f"); done < "$RS"; fi\n'
        '  if [ "$st" = ok ] && [ ${#rs[@]} -gt 0 ]; then\n'
        '    printf "%s\\0" "${rs[@]}" | git checkout-index -f -q -z --stdin || exit 1; fi\n'
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
        # a failed attempt may leave what it made (a directory); a 3-way one writes the
        # index, which reset restores from; patch(1) follows a symlink the script left in
        # the tree to a file no list names: after any but a plain git apply, the next
        # reset is a whole one
        if not result.ok or result.method != "git-apply":
            self._tree_written = True
        return result

    def diff(self) -> str:
        with self._trusted_calls():
            return super().diff()

    @property
    def _request(self) -> tuple[str, str]:
        """What the agent is told the calling thread's root command is, and what it needs
        to do it in process: ``reset`` / ``reset-whole`` with the kept paths, ``apply``
        with the patch; else ``sh`` (a bash agent takes every kind but ``run`` as ``sh``,
        see agent_server). Per thread: another thread's command is never taken for it."""
        current = _REQUEST.get()
        return (current[1], current[2]) if current and current[0] is self else ("sh", "")

    @contextlib.contextmanager
    def _as_request(self, kind: str, extra: str) -> Iterator[None]:
        token = _REQUEST.set((self, kind, extra))
        try:
            yield
        finally:
            _REQUEST.reset(token)

    def _flush_pending(self) -> None:
        """Writes queued for the next root command made now (the Docker sandbox queues
        small ones): the agent may reset or patch in process, without the script."""

    def reset(self) -> None:
        with self._trusted_calls():
            self._flush_pending()
        kind = "reset-whole" if self._tree_written else "reset"
        with self._trusted_calls(), self._as_request(kind, "\0".join(self.keep_untracked)):
            super().reset()

    def _apply_sh(
        self, script: str, pfile: str, data: bytes, paths: list[str]
    ) -> tuple[int | None, bytes, bytes]:
        with self._trusted_calls():
            self._flush_pending()
        self.write_file(pfile, data)
        extra = json.dumps({"paths": paths, "patch": base64.b64encode(data).decode()})
        with self._as_request("apply", extra):
            return self._sh(script, timeout=120)

    def export_repo(self, dest: Path) -> list[str]:
        with self._trusted_calls():
            return super().export_repo(dest)

    def _kill_strays(self) -> str:
        return kill_strays_script(self.uid)

    def _reset_extra(self) -> str:
        return reset_extra_script(self.uid)

    def _after_apply(self) -> str:
        return after_apply_script(self.uid)

    def _restore_script(self) -> str:
        whole, self._tree_written = self._tree_written, False
        return touched_restore_script(
            self.uid,
            self.workdir,
            self.base_commit,
            self._keep_args("-e"),
            self.private_dir,
            whole,
            super()._restore_script(),
        )
