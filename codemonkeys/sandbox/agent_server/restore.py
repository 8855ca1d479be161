"""reset() in process (``tracked_reset.touched_restore_script``, ``container.
kill_strays_script`` and ``reset_extra_script`` in one): when the list of what changed is
sound, the listed new entries removed, the base's files under the listed paths and those
missing from the listed directories written again from the index and given back to the
sandbox user, scratch emptied. Anything it cannot do that way (a directory of the base
gone, a list it does not understand) is left to the bash script, which resets the whole
tree."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess

from .listing import ancestors, read_list
from .settings import SCRIPT_DIR, Settings, get, put

SCRATCH = ("/tmp", "/var/tmp", "/dev/shm", "/dev/mqueue")
SUBMODULE, TREE = "160000", "040000"


def run_git(
    s: Settings, args: list[str], data: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    """A git command of ours in the work tree (no hooks, no system config: common.GIT_*)."""
    return subprocess.run(
        ["git", *s.git_args, *args], cwd=s.workdir, env=s.git_env, input=data, capture_output=True
    )


def git(s: Settings, args: list[str], data: bytes | None = None) -> bytes:
    """``run_git``'s output; OSError when it fails."""
    p = run_git(s, args, data)
    if p.returncode != 0:
        raise OSError(f"git {args[0]} failed: {p.stderr.decode(errors='replace')[-500:]}")
    return p.stdout


class BaseTree:
    """The base commit's paths, from the index: it holds the base between resets (a
    3-way patch, the one thing of ours that writes it, makes the next reset whole)."""

    def __init__(self, s: Settings) -> None:
        self.mode: dict[str, str] = {}
        self.children: dict[str, dict[str, str]] = {"": {}}  # directory ("": top) -> name -> mode
        for entry in git(s, ["ls-files", "-s", "-z"]).split(b"\0"):
            meta, _, raw = entry.partition(b"\t")
            if raw:
                self.add(os.fsdecode(raw), meta.split()[0].decode())

    def add(self, path: str, mode: str) -> None:
        self.mode[path] = mode
        parts = path.split("/")
        for i, name in enumerate(parts):
            here = self.children.setdefault("/".join(parts[:i]), {})
            here[name] = mode if i == len(parts) - 1 else TREE

    def files_under(self, path: str) -> list[str]:
        if path in self.mode:
            return [path]
        if path not in self.children:
            return []
        return [p for p in self.mode if p.startswith(path + "/")]


class Restorer:
    def __init__(self, s: Settings) -> None:
        self.s = s
        self.base: BaseTree | None = None

    def reset(self, keep: list[str]) -> bool:
        """The work tree as the base commit: True when done, False when only the whole
        reset will do (nothing changed yet that the whole one does not redo)."""
        listed = read_list(self.s.workdir, self.s.touched_list)
        if listed is None or len(listed) > self.s.max_touched:
            return False
        if self.base is None:
            self.base = BaseTree(self.s)
        own = [rel for kind, rel in listed if kind == "o"]
        changed = [rel for kind, rel in listed if kind in ("o", "c")]
        restore = self.restore_list(self.base, changed, [r for k, r in listed if k == "d"])
        if restore is None:
            return False
        put(self.s.touched_list, b"")
        self.clean(self.base, own, keep)
        if restore:
            paths = b"".join(os.fsencode(p) + b"\0" for p in restore)
            git(self.s, ["checkout-index", "-f", "-q", "-z", "--stdin"], paths)
            for rel in restore:
                os.lchown(self.s.workdir + "/" + rel, self.s.uid, self.s.uid)
        return True

    def restore_list(self, base: BaseTree, paths: list[str], dirs: list[str]) -> list[str] | None:
        """The base's files under ``paths`` and those missing from ``dirs``; None when a
        directory of the base is gone (root's and sticky: no script removed it)."""
        out: dict[str, None] = {}
        for rel in paths:
            out.update((p, None) for p in base.files_under(rel))
        for d in dirs:
            for name, mode in base.children.get(d, {}).items():
                rel = d + "/" + name if d else name
                if mode == SUBMODULE or os.path.lexists(self.s.workdir + "/" + rel):
                    continue
                if mode == TREE:
                    return None
                out[rel] = None
        return [p for p in out if base.mode[p] != SUBMODULE]

    def clean(self, base: BaseTree, own: list[str], keep: list[str]) -> None:
        """The top-most listed entries that are neither the base's nor kept: removed."""
        listed = set(own)
        for rel in own:
            if not rel or rel in base.mode or rel in base.children:
                continue
            if any(a in listed for a in ancestors(rel)):
                continue
            if any(rel == k or rel.startswith(k + "/") for k in keep):
                continue
            remove(self.s.workdir + "/" + rel)


def remove(path: str) -> None:
    """``path`` gone (a directory with everything in it; a symlink itself, never what it
    points to), unless a symlink leads to it."""
    parent = os.path.dirname(path)
    if os.path.realpath(parent) != parent:
        raise OSError(f"a symlink leads to {path}")
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(path)
    else:
        os.unlink(path)


def empty_scratch(uid: int) -> None:
    """Scratch mounts emptied (``SCRIPT_DIR``, root's, kept), ``/tmp/home`` made anew,
    System V IPC objects removed."""
    try:
        st = os.lstat(SCRIPT_DIR)
        kept = stat.S_ISDIR(st.st_mode) and st.st_uid == 0
    except OSError:
        kept = False
    for top in SCRATCH:
        try:
            names = os.listdir(top)
        except OSError:
            continue
        for name in names:
            if not (kept and f"{top}/{name}" == SCRIPT_DIR):
                remove(f"{top}/{name}")
    if not kept:
        os.mkdir(SCRIPT_DIR)
        os.chmod(SCRIPT_DIR, 0o755)
    os.mkdir("/tmp/home", 0o700)
    os.chown("/tmp/home", uid, uid)
    for kind in ("shm", "msg", "sem"):
        if len(get("/proc/sysvipc/" + kind).splitlines()) > 1:
            subprocess.run(["ipcrm", "-a"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            break
