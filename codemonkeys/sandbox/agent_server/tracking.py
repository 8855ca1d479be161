"""What a run changed in the work tree: inotify events, or a walk by ctime.

Every directory of the tree (children created, removed, moved, written, closed after a
write, their attributes changed) and every regular file's own inode (written, closed after
a write, attributes changed, which includes a new hard link to it) is watched, so a change
through any path, a shared memory map (its writable open closes at the latest when the
process dies) or a hard link is seen. Files under a directory the run made are not
watched: that whole directory is the script's, and reset removes it.

A run's list is the events between two sync marks (a file made in a watched private
directory: one inotify instance delivers its events in order), taken after every process
of the sandbox user is dead. It is trusted only when no event was lost (queue overflow),
no watch failed and it stays within ``max_touched`` entries; otherwise, and wherever
inotify cannot be used (no ``inotify_init1``, the watch limit reached), the run walks the
tree by ctime as ``agent.RUN_LIB``'s ``cm_track`` does (``walk_changes``).
"""

from __future__ import annotations

import ctypes
import os
import stat
import struct
import threading
from typing import TYPE_CHECKING

from .listing import listed_paths
from .settings import Settings, put

IN_MODIFY, IN_ATTRIB, IN_CLOSE_WRITE = 0x2, 0x4, 0x8
IN_MOVED_FROM, IN_MOVED_TO, IN_CREATE, IN_DELETE = 0x40, 0x80, 0x100, 0x200
IN_DELETE_SELF, IN_MOVE_SELF, IN_Q_OVERFLOW, IN_IGNORED = 0x400, 0x800, 0x4000, 0x8000
IN_ONLYDIR, IN_DONT_FOLLOW = 0x1000000, 0x2000000
FILE_MASK = IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_DONT_FOLLOW
DIR_MASK = FILE_MASK | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_DELETE | IN_ONLYDIR
DIR_MASK |= IN_DELETE_SELF | IN_MOVE_SELF
GONE = IN_MOVED_FROM | IN_DELETE
EVENT = struct.Struct("iIII")

if TYPE_CHECKING:  # (a runtime alias would need Python 3.9 in the container)
    Entry = tuple[str, str]
    """("o", a path written or made) or ("d", a directory whose entries changed)."""


class Tracker:
    """Inotify watches over the work tree; the entries changed between two sync marks."""

    def __init__(self, settings: Settings) -> None:
        self.s = settings
        self.lock = threading.Lock()
        self.paths: dict[int, tuple[str, bool]] = {}  # watch -> (path, is a directory)
        self.entries: dict[Entry, None] = {}  # in order
        self.watching = True  # every watch in place (one failed: walk until a rescan)
        self.complete = True  # no event of this run lost, not too many
        self.scanned = False
        self.sizes: dict[str, int] = {}  # watched directory -> its bytes before this run
        self.older: list[str] = []  # the user's directories of earlier runs, not reset yet
        self.synced = threading.Event()
        self.mark = b""
        self.sync_dir = settings.agent_dir + "/sync"
        libc = ctypes.CDLL(None, use_errno=True)  # the interpreter's own: libc is in it
        self.add = libc.inotify_add_watch
        self.add.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
        self.fd = libc.inotify_init1(os.O_CLOEXEC)
        if self.fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1")
        os.makedirs(self.sync_dir, 0o700, exist_ok=True)
        self.watch(self.sync_dir, True)
        threading.Thread(target=self.read_events, daemon=True).start()

    # -- watches ----------------------------------------------------------------------------
    def watch(self, path: str, is_dir: bool) -> None:
        wd = self.add(self.fd, os.fsencode(path), DIR_MASK if is_dir else FILE_MASK)
        with self.lock:
            if wd < 0:
                self.watching = False  # the watch limit, or a race with a removal
            else:
                self.paths[wd] = (path, is_dir)
        if is_dir:
            self.sizes[path] = size_of(path)

    def watch_tree(self, top: str) -> None:
        """Watches on ``top`` and every directory and regular file under it (not .git)."""
        for root, dirs, files in os.walk(top):
            if root == self.s.workdir and ".git" in dirs:
                dirs.remove(".git")
            self.watch(root, True)
            for name in files:
                path = os.path.join(root, name)
                try:
                    if stat.S_ISREG(os.lstat(path).st_mode):
                        self.watch(path, False)
                except OSError:
                    pass

    def rescan(self) -> None:
        with self.lock:
            self.watching = True
        self.watch_tree(self.s.workdir)
        self.scanned = True

    def renew(self, listed: list[Entry], whole: bool) -> None:
        """After reset: watch what it wrote again (a checkout makes new inodes)."""
        if whole or not self.scanned:
            self.rescan()
            return
        for kind, path in listed:
            if kind == "d":
                self.watch_children(path)
            elif os.path.isdir(path) and not os.path.islink(path):
                self.watch_tree(path)
            elif os.path.isfile(path) and not os.path.islink(path):
                self.watch(path, False)

    def watch_children(self, path: str) -> None:
        try:
            with os.scandir(path) as it:
                for e in it:
                    if e.is_file(follow_symlinks=False):
                        self.watch(e.path, False)
        except OSError:
            pass

    # -- events ------------------------------------------------------------------------------
    def read_events(self) -> None:
        while True:
            try:
                data = os.read(self.fd, 1 << 16)
            except InterruptedError:
                continue
            except OSError:
                with self.lock:
                    self.watching = False
                return
            with self.lock:
                at = 0
                while at < len(data):
                    wd, mask, _, size = EVENT.unpack_from(data, at)
                    self.take(wd, mask, data[at + 16 : at + 16 + size].rstrip(b"\0"))
                    at += 16 + size

    def take(self, wd: int, mask: int, name: bytes) -> None:
        """One event (the lock held)."""
        if mask & IN_Q_OVERFLOW:
            self.complete = False
            return
        if mask & IN_IGNORED:
            self.paths.pop(wd, None)
            return
        if wd not in self.paths:
            return
        path, is_dir = self.paths[wd]
        if path == self.sync_dir:
            if name == self.mark:
                self.synced.set()
            return
        if not self.complete:
            return  # too many already: the run walks the tree (and memory stays bounded)
        for entry in self.changed(path, is_dir, mask, name):
            self.entries[entry] = None
        if len(self.entries) > self.s.max_touched:
            self.complete = False

    def changed(self, path: str, is_dir: bool, mask: int, name: bytes) -> list[Entry]:
        """What one event on ``path``'s watch says changed."""
        if not is_dir:
            return [("o", path)]  # its inode: written, closed after a write, linked
        if name:
            child = [] if mask & GONE else [("o", path + "/" + os.fsdecode(name))]
            return child + ([("d", path)] if mask & (GONE | IN_CREATE | IN_MOVED_TO) else [])
        if mask & (IN_DELETE_SELF | IN_MOVE_SELF) and path != self.s.workdir:
            return [("o", path)]
        return []

    # -- a run ---------------------------------------------------------------------------------
    def sync(self) -> None:
        """Every event before this call has been taken."""
        mark = os.urandom(8).hex().encode()
        with self.lock:
            self.mark = mark
            self.synced.clear()
        path = os.path.join(self.sync_dir, mark.decode())
        put(path, b"")
        os.unlink(path)
        if not self.synced.wait(10):
            with self.lock:
                self.complete = False

    def begin(self) -> None:
        """A run starts: nothing before it counts; the tree is watched (the first time:
        whatever the sandbox's preparation rewrote is the tree now), and so are the
        directories a patch made and the files it wrote (new inodes: a write through a hard
        link to one changes no watched directory). Never a directory of the sandbox
        user's (a run's, not reset yet: reset removes it whole, and the disk check walks it
        by ctime): its entries would cost the host's watches for root
        (``max_user_watches``, shared by every container)."""
        if not self.scanned:
            self.rescan()
        self.older = []
        for kind, path in listed_paths(self.s.workdir, self.s.touched_list):
            self.resize(path if kind == "d" else os.path.dirname(path))
            try:
                st = os.lstat(path)
            except OSError:
                continue
            if kind != "o" or path == self.s.workdir:
                continue
            if stat.S_ISDIR(st.st_mode) and st.st_uid == self.s.uid:
                self.older.append(path)  # what this run writes in it: found by ctime
            elif stat.S_ISDIR(st.st_mode):
                self.watch_tree(path)
            elif stat.S_ISREG(st.st_mode):
                self.watch(path, False)
        self.sync()
        with self.lock:
            self.entries = {}
            self.complete = True

    def resize(self, path: str) -> None:
        """A watched directory's size now, for the disk check of the next run. Only those
        that grew since the last run need it (what earlier runs and patches listed: reset
        makes no directory grow, and after a whole one every watch is renewed), so a run
        does not stat every directory of the tree."""
        if path in self.sizes:
            self.sizes[path] = size_of(path)

    def taken(self) -> tuple[list[Entry], bool]:
        """(the entries since ``begin``, whether they are all of them)."""
        with self.lock:
            return list(self.entries), self.watching and self.complete


ENTRY_COST = 4096
"""What an entry of the sandbox user's costs at least (an inode, a directory slot): empty
files hold no block, and millions of them would use up the host's inodes."""


def charged(st: os.stat_result) -> int:
    """What one of the user's entries counts against the disk limit."""
    return max(st.st_blocks * 512, ENTRY_COST)


def size_of(path: str) -> int:
    """The bytes ``path`` holds on disk (0 when it is gone)."""
    try:
        return os.lstat(path).st_blocks * 512
    except OSError:
        return 0


def growth(path: str, sizes: dict[str, int]) -> int:
    """How much a directory not the user's grew since the run began (its entries: a
    directory never shrinks as they go); 0 when its size then is not known."""
    return max(0, size_of(path) - sizes.get(path, 1 << 62))


def bytes_written(uid: int, entries: list[Entry], sizes: dict[str, int]) -> int:
    """The disk the sandbox user's listed entries hold (its directories walked whole),
    and the growth of the listed directories not the user's (``sizes``: theirs before)."""
    total = 0
    for kind, path in entries:
        if kind != "o":
            total += growth(path, sizes)
            continue
        try:
            st = os.lstat(path)
        except OSError:
            continue
        if st.st_uid != uid:
            continue
        total += charged(st)
        if stat.S_ISDIR(st.st_mode):
            total += walk_changes(uid, path, path, None, sizes)[1]
    return total


def walk_changes(
    uid: int, workdir: str, top: str, since: int | None, sizes: dict[str, int]
) -> tuple[list[Entry], int]:
    """``cm_track``'s walk of ``top``: (the entries whose ctime is newer than ``since``, in
    ns (None: all), and the bytes the sandbox user's of them hold and the other
    directories grew by, ``sizes`` their bytes before): the user's own entries as ``o``,
    other directories as ``d``. Its filesystem only; the work tree's .git not entered."""
    entries: list[Entry] = []
    total = 0
    try:
        dev = os.lstat(top).st_dev
    except OSError:  # gone (a directory of the user's that the run removed)
        return entries, total
    stack = [top]
    while stack:
        here = stack.pop()
        try:
            listing = list(os.scandir(here))
        except OSError:
            continue
        for e in listing:
            if here == workdir and e.name == ".git":
                continue
            try:
                st = e.stat(follow_symlinks=False)
            except OSError:
                continue
            is_dir = stat.S_ISDIR(st.st_mode)
            if is_dir and st.st_dev == dev:
                stack.append(e.path)
            if since is not None and st.st_ctime_ns <= since:
                continue
            if st.st_uid == uid:
                entries.append(("o", e.path))
                total += charged(st)
            elif is_dir:
                entries.append(("d", e.path))
                total += growth(e.path, sizes)
    return entries, total
