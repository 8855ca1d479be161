"""The in-container command server in Python: ``agent.py``'s protocol with no process
spawned per request but the command itself, and no walk of the work tree after a run.

This file runs INSIDE the sandbox container, as root, under the image's own ``python3``
(``-I -S``: no site-packages, no environment variables read), standard library only, and
Python 3.6 syntax. ``agent.LAUNCH`` starts it when the image has a root-owned python3 and
falls back to the bash agent (``agent.AGENT_SCRIPT``) otherwise; both keep the same
contract, which the sandbox tests hold either way.

What it saves, measured on a sphinx instance image (a script run's cycle of apply, run and
reset): the bash agent forks ``base64``, ``stat``, ``cat`` and a subshell per request
(about 1.5 ms each here) and wraps every run in ``timeout``, ``setpriv``, ``head``, ``dd``,
``tail`` and a ``find`` over the whole tree (1,900 entries: 16-22 ms on overlayfs, whatever
the script did). Here the run is one fork of the script's bash, and what the script
changed in the work tree comes from **inotify**:

- every directory of the tree (children created, removed, moved, written, closed after a
  write, their attributes changed) and every regular file's own inode (written, closed
  after a write, attributes changed, which includes a new hard link to it) is watched, so
  a change through any path, an mmap'd write (its writable open closes at the latest when
  the process dies) or a hard link is seen; files under a directory the run created are
  not watched, as that whole directory is the script's and reset removes it;
- a run's list is the events between two sync marks (a file created in a watched private
  directory: inotify delivers one instance's events in order), taken after every process
  of the script user is dead;
- the list is trusted only if no event was lost (queue overflow), no watch failed and it
  stays under ``MAX_EVENTS`` entries; else, and whenever inotify cannot be used (no
  ``inotify_init1``, the watch limit reached), the run walks the tree by ctime as
  ``agent.RUN_LIB``'s ``cm_track`` does.

The disk check (what the script user wrote to the work tree, against ``DISK``) sums the
listed entries of that user, and the directories it created, walked.

Requests and answers: see ``agent.py``. ``reset`` requests are ``sh`` requests after which
the watches are renewed for the paths reset wrote again (a checkout makes new inodes):
those listed before it, or the whole tree when its output says it reset everything
(``WHOLE_MARK``).
"""

import base64
import ctypes
import ctypes.util
import json
import os
import resource
import shutil
import signal
import stat
import struct
import subprocess
import sys
import threading
import time

SETTINGS = json.loads(sys.argv[1])  # see agent.python_agent_argv
U, DISK = SETTINGS["uid"], SETTINGS["disk"]
WD = SETTINGS["workdir"].rstrip("/") or "/"
D = SETTINGS["agent_dir"]  # the agent's private directory (root's, 700)
TL, TS = SETTINGS["touched_list"], SETTINGS["touched_state"]  # reset's list, its state
DISK_NOTE, FILE_NOTE = SETTINGS["disk_note"], SETTINGS["file_note"]
WHOLE_MARK = SETTINGS["whole_mark"].encode()
MAX_EVENTS = SETTINGS["max_touched"]
R = "/tmp/codemonkeys"
GIT_DIR = WD + "/.git"

IN_MODIFY, IN_ATTRIB, IN_CLOSE_WRITE = 0x2, 0x4, 0x8
IN_MOVED_FROM, IN_MOVED_TO, IN_CREATE, IN_DELETE = 0x40, 0x80, 0x100, 0x200
IN_DELETE_SELF, IN_MOVE_SELF, IN_Q_OVERFLOW, IN_IGNORED = 0x400, 0x800, 0x4000, 0x8000
IN_ONLYDIR, IN_DONT_FOLLOW, IN_ISDIR = 0x1000000, 0x2000000, 0x40000000
FILE_MASK = IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_DONT_FOLLOW
DIR_MASK = (
    FILE_MASK | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_DELETE | IN_DELETE_SELF
    | IN_MOVE_SELF | IN_ONLYDIR
)
GONE = IN_MOVED_FROM | IN_DELETE
EVENT = struct.Struct("iIII")


def write_all(fd, data):
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def put(path, data, mode=0o600):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, mode)
    try:
        write_all(fd, data)
    finally:
        os.close(fd)


def get(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return b""


def now_ns():
    return int(time.time() * 1e9)


def exit_code(rc):
    return 128 - rc if rc < 0 else rc


# -- the script user's processes --------------------------------------------------------
def user_pids(live_only):
    """The script user's processes (``live_only``: not zombies: they write nothing)."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            if os.stat("/proc/" + name).st_uid != U:
                continue
            if live_only:
                with open("/proc/%s/stat" % name, "rb") as f:
                    state = f.read().rsplit(b")", 1)[1].split()[0]
                if state in (b"Z", b"X"):
                    continue
        except (OSError, IndexError):
            continue
        found.append(int(name))
    return found


def kill_user():
    """Every process of the script user killed, as that user (``kill(-1)``: the kernel's
    own walk, which a fork in flight cannot outrun twice)."""
    if not user_pids(False):
        return
    pid = os.fork()
    if pid == 0:
        try:
            os.setgroups([])
            os.setgid(U)
            os.setuid(U)
            for _ in range(2):
                try:
                    os.kill(-1, signal.SIGKILL)
                except OSError:
                    pass
        finally:
            os._exit(0)
    os.waitpid(pid, 0)


# -- what changed: inotify, or a walk by ctime -------------------------------------------
class Tracker:
    """Inotify watches over the work tree; the entries changed between two sync marks."""

    def __init__(self):
        self.lock = threading.Lock()
        self.paths = {}  # wd -> (path, is_dir)
        self.entries = {}  # (kind, path) -> None, in order
        self.watching = True  # every watch in place (a failed one: walk until a rescan)
        self.complete = True  # no event of this run lost, not too many
        self.synced = threading.Event()
        self.mark = b""
        self.scanned = False
        self.sync_dir = D + "/sync"
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        self.add = libc.inotify_add_watch
        self.add.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
        self.fd = libc.inotify_init1(os.O_CLOEXEC)
        if self.fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1")
        os.makedirs(self.sync_dir, 0o700, exist_ok=True)
        self.watch(self.sync_dir, True)
        threading.Thread(target=self.read_events, daemon=True).start()

    def watch(self, path, is_dir):
        wd = self.add(self.fd, os.fsencode(path), DIR_MASK if is_dir else FILE_MASK)
        if wd < 0:
            with self.lock:
                self.watching = False  # the watch limit, a race with a removal
            return
        with self.lock:
            self.paths[wd] = (path, is_dir)

    def watch_tree(self, top):
        """Watches on ``top``, every directory and regular file under it (not .git)."""
        for root, dirs, files in os.walk(top):
            if root == WD and ".git" in dirs:
                dirs.remove(".git")
            self.watch(root, True)
            for name in files:
                path = os.path.join(root, name)
                try:
                    if stat.S_ISREG(os.lstat(path).st_mode):
                        self.watch(path, False)
                except OSError:
                    pass

    def read_events(self):
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
                self.take(data)

    def take(self, data):
        at = 0
        while at < len(data):
            wd, mask, _, size = EVENT.unpack_from(data, at)
            name = data[at + 16 : at + 16 + size].rstrip(b"\0")
            at += 16 + size
            if mask & IN_Q_OVERFLOW:
                self.complete = False
                continue
            owner = self.paths.get(wd)
            if mask & IN_IGNORED:
                self.paths.pop(wd, None)
                continue
            if owner is None:
                continue
            path, is_dir = owner
            if path == self.sync_dir:
                if name == self.mark:
                    self.synced.set()
                continue
            if not is_dir:
                self.entries[("o", path)] = None
            elif name:
                child = path + "/" + os.fsdecode(name)
                if not mask & GONE:
                    self.entries[("o", child)] = None
                if mask & (GONE | IN_CREATE | IN_MOVED_TO):
                    self.entries[("d", path)] = None
            elif mask & (IN_DELETE_SELF | IN_MOVE_SELF) and path != WD:
                self.entries[("o", path)] = None
            if len(self.entries) > MAX_EVENTS:
                self.complete = False

    def sync(self):
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

    def begin(self):
        """A run starts: nothing before it counts; the tree is watched (the first time:
        whatever the sandbox's preparation rewrote is the tree now), and so are the
        directories a patch made."""
        if not self.scanned:
            self.rescan()
        for kind, path in listed_entries():
            if kind == "o" and os.path.isdir(path) and not os.path.islink(path):
                self.watch_tree(path)
        self.sync()
        with self.lock:
            self.entries = {}
            self.complete = True

    def taken(self):
        """(entries since ``begin``, whether they are all of them as far as inotify knows)."""
        with self.lock:
            return list(self.entries), self.watching and self.complete

    def rescan(self):
        with self.lock:
            self.watching = True
        self.watch_tree(WD)
        self.scanned = True

    def renew(self, listed, whole):
        """After reset: watch what it wrote again (new inodes); the events it caused, and
        every one before, do not count."""
        if whole or not self.scanned:
            self.rescan()
        else:
            for kind, path in listed:
                if kind == "d":
                    self.watch_children(path)
                elif os.path.isdir(path) and not os.path.islink(path):
                    self.watch_tree(path)
                elif os.path.isfile(path) and not os.path.islink(path):
                    self.watch(path, False)

    def watch_children(self, path):
        try:
            with os.scandir(path) as it:
                for e in it:
                    if e.is_file(follow_symlinks=False):
                        self.watch(e.path, False)
        except OSError:
            pass


def new_entries(entries):
    """The disk the script user's listed entries hold, in bytes (its directories walked)."""
    total = 0
    for kind, path in entries:
        if kind != "o":
            continue
        try:
            st = os.lstat(path)
        except OSError:
            continue
        if st.st_uid != U:
            continue
        total += st.st_blocks * 512
        if stat.S_ISDIR(st.st_mode):
            total += walk_changes(path, None)[1]
    return total


def walk_changes(top, since):
    """cm_track's walk: (entries newer than ``since`` (ns; None: all), bytes the script
    user's of them hold). The work tree's own filesystem only, .git not entered."""
    entries, total = [], 0
    dev = os.lstat(top).st_dev
    stack = [top]
    while stack:
        here = stack.pop()
        try:
            it = os.scandir(here)
        except OSError:
            continue
        with it:
            for e in it:
                if here == WD and e.name == ".git":
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
                if st.st_uid == U:
                    entries.append(("o", e.path))
                    total += st.st_blocks * 512
                elif is_dir:
                    entries.append(("d", e.path))
    return entries, total


# -- reset in process ---------------------------------------------------------------------
GIT = SETTINGS["git"]
GIT_ENV = {k: v for k, v in os.environ.items() if k not in GIT["unset"]}
GIT_ENV.update(GIT["env"])
SCRATCH = ("/tmp", "/var/tmp", "/dev/shm", "/dev/mqueue")


def git(args, data=None):
    """A git command of ours in the work tree (no hooks, no system config: common.GIT_*)."""
    p = subprocess.run(
        ["git"] + GIT["args"] + args, cwd=WD, env=GIT_ENV, input=data,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    if p.returncode != 0:
        raise OSError("git %s failed: %s" % (args[0], p.stderr.decode(errors="replace")[-500:]))
    return p.stdout


class BaseTree:
    """The base commit's paths, from the index (which holds the base between resets:
    a 3-way patch, the one thing of ours that writes it, makes the next reset whole)."""

    def __init__(self):
        self.mode = {}  # path -> mode (octal string)
        self.children = {"": {}}  # directory ("" = top) -> {name: mode}
        for entry in git(["ls-files", "-s", "-z"]).split(b"\0"):
            if not entry:
                continue
            meta, _, raw = entry.partition(b"\t")
            path, mode = os.fsdecode(raw), meta.split()[0].decode()
            self.mode[path] = mode
            parts = path.split("/")
            for i in range(len(parts)):
                parent = "/".join(parts[:i])
                self.children.setdefault(parent, {})[parts[i]] = (
                    mode if i == len(parts) - 1 else "040000"
                )

    def files_under(self, path):
        if path in self.mode:
            return [path]
        if path not in self.children:
            return []
        prefix = path + "/"
        return [p for p in self.mode if p.startswith(prefix)]


def relative(path):
    """A listed path (absolute: a run's; relative to the work tree: a patch's) relative to
    the work tree ("" for its top), or None if it is outside."""
    if path.startswith("/"):
        if path != WD and not path.startswith(WD + "/"):
            return None
        path = path[len(WD) + 1 :]
    rel = os.path.normpath(path) if path else "."
    if rel == ".":
        return ""
    if rel == ".." or rel.startswith("../") or rel.startswith("/"):
        return None
    return rel


def listed_entries():
    """The entries of reset's list, absolute: ("o" or "d", path)."""
    out = []
    for entry in get(TL).split(b"\0"):
        rel = relative(os.fsdecode(entry[1:])) if entry[:1] in (b"o", b"c", b"d") else None
        if rel is not None:
            out.append(("d" if entry[:1] == b"d" else "o", WD + "/" + rel if rel else WD))
    return out


def remove(path):
    """``path`` gone (a directory with everything in it; a symlink itself, never where it
    points), if no symlink leads to it."""
    parent = os.path.dirname(path)
    if os.path.realpath(parent) != parent:
        raise OSError("a symlink leads to %s" % path)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(path)
    else:
        os.unlink(path)


def empty_scratch():
    """reset_extra_script: scratch mounts emptied (``/tmp/codemonkeys``, root's, kept),
    ``/tmp/home`` made anew, System V IPC objects removed."""
    keep = R
    try:
        st = os.lstat(keep)
        keep_ok = stat.S_ISDIR(st.st_mode) and st.st_uid == 0
    except OSError:
        keep_ok = False
    for top in SCRATCH:
        try:
            names = os.listdir(top)
        except OSError:
            continue
        for name in names:
            path = top + "/" + name
            if keep_ok and path == keep:
                continue
            remove(path)
    if not keep_ok:
        os.mkdir(keep, 0o755)
        os.chmod(keep, 0o755)
    os.mkdir("/tmp/home", 0o700)
    os.chown("/tmp/home", U, U)
    for kind in ("shm", "msg", "sem"):
        if len(get("/proc/sysvipc/" + kind).splitlines()) > 1:
            subprocess.run(["ipcrm", "-a"], stderr=subprocess.DEVNULL)
            break


class Restorer:
    """tracked_reset.touched_restore_script in process: the listed new entries removed,
    the base's files under the listed paths and those missing from the listed
    directories written again from the index and given back to the sandbox user."""

    def __init__(self):
        self.base = None

    def listed(self):
        """(new-or-changed, changed, directories) relative paths, or None if unusable."""
        own, chg, dirs = {}, {}, {}
        raw = get(TL).split(b"\0")
        if len(raw) > MAX_EVENTS + 1:
            return None
        for entry in raw:
            if not entry:
                continue
            kind, rel = entry[:1], relative(os.fsdecode(entry[1:]))
            if rel is None or kind not in (b"o", b"c", b"d"):
                return None
            {b"o": own, b"c": chg, b"d": dirs}[kind][rel] = None
        return list(own), list(chg), list(dirs)

    def reset(self, keep):
        """True when done; False when only a whole reset will do (nothing changed yet
        that the whole one does not redo)."""
        listed = self.listed()
        if listed is None:
            return False
        own, chg, dirs = listed
        if self.base is None:
            self.base = BaseTree()
        restore = self.restore_list(own + chg, dirs)
        if restore is None:
            return False
        put(TL, b"")
        self.clean(own, keep)
        if restore:
            git(["checkout-index", "-f", "-q", "-z", "--stdin"],
                b"".join(os.fsencode(p) + b"\0" for p in restore))
            for rel in restore:
                os.lchown(WD + "/" + rel, U, U)
        return True

    def restore_list(self, paths, dirs):
        base, out = self.base, {}
        for rel in paths:
            for p in base.files_under(rel):
                out[p] = None
        for d in dirs:
            for name, mode in base.children.get(d, {}).items():
                rel = d + "/" + name if d else name
                if mode == "160000" or os.path.lexists(WD + "/" + rel):
                    continue
                if mode == "040000":
                    return None  # a directory of the base gone: reset the whole tree
                out[rel] = None
        return [p for p in out if base.mode[p] != "160000"]

    def clean(self, own, keep):
        """The top-most listed entries that are not the base's nor kept: removed."""
        listed = set(own)
        for rel in own:
            if not rel or any(a in listed for a in ancestors(rel)):
                continue
            if rel in self.base.mode or rel in self.base.children:
                continue
            if any(rel == k or rel.startswith(k + "/") for k in keep):
                continue
            remove(WD + "/" + rel)


def ancestors(rel):
    parts = rel.split("/")
    return ["/".join(parts[:i]) for i in range(1, len(parts))]


def apply_patch(spec):
    """apply_patch's first try in process (common.ShellGitSandbox.apply_patch,
    container.after_apply_script): ``git apply`` of the patch, its paths given to the
    sandbox user, the directories it made sticky, all of them listed for reset. None when
    the script must do it (a path leading out of the tree, git apply refusing: the
    script then tries the other methods and says why)."""
    paths = spec["paths"]
    top = os.path.realpath(WD)
    for path in paths:
        if not os.path.realpath(os.path.join(WD, path)).startswith(top + "/"):
            return None
    pre = [p for p in paths if os.path.lexists(os.path.join(WD, p))]
    p = subprocess.run(
        ["git"] + GIT["args"] + ["apply", "--whitespace=nowarn"], cwd=WD, env=GIT_ENV,
        input=base64.b64decode(spec["patch"]), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    if p.returncode != 0:
        return None
    made = []  # applied: from here on nothing may send the patch to the script again
    for path in paths:
        for parent in ancestors(path):
            full = os.path.join(WD, parent)
            try:
                st = os.lstat(full)
                if stat.S_ISDIR(st.st_mode) and not st.st_mode & stat.S_ISVTX:
                    os.chmod(full, 0o1777)
                    made.append(parent)
            except OSError:
                pass  # a directory the patch emptied and git removed
        try:
            os.lchown(os.path.join(WD, path), U, U)
        except OSError:
            pass  # a file the patch deleted
    new = [p for p in paths if p not in pre] + made
    with open(TL, "ab") as f:
        f.write(b"".join(b"c" + os.fsencode(p) + b"\0" for p in pre))
        f.write(b"".join(b"o" + os.fsencode(p) + b"\0" for p in new))
    return SETTINGS["method_tag"].encode() + b"git-apply\n"


# -- requests ------------------------------------------------------------------------------
class Capped:
    """head + tail of a stream, each at most ``cap`` bytes, and its total size."""

    def __init__(self, cap):
        self.cap, self.head, self.tail, self.total = cap, bytearray(), bytearray(), 0

    def feed(self, data):
        self.total += len(data)
        room = self.cap - len(self.head)
        if room > 0:
            self.head += data[:room]
            data = data[room:]
        if data and self.cap > 0:
            self.tail += data
            if len(self.tail) > 2 * self.cap:
                del self.tail[: len(self.tail) - self.cap]

    def parts(self):
        return bytes(self.head), bytes(self.tail[-self.cap :] if self.cap else b"")


class Server:
    def __init__(self, tracker):
        self.tracker = tracker
        self.restorer = Restorer()
        self.since = 0
        self.run_env = dict(os.environ, HOME="/tmp/home", USER="nobody", LOGNAME="nobody", TMPDIR="/tmp")

    def answer(self, nonce, rc, one, two, total):
        head = ("@@CMRESP %s %d %d %d %d\n" % (nonce, rc, len(one), len(two), total)).encode()
        write_all(1, head + one + two)

    def sh(self, script, timeout, umask=None):
        """A root script: (rc, stdout, stderr); timeout None = none."""
        path = D + "/req.sh"
        put(path, script)
        pre = (lambda: os.umask(umask)) if umask is not None else None
        p = subprocess.Popen(
            ["bash", path], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, start_new_session=True, preexec_fn=pre,
        )
        try:
            out, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_group(p.pid)
            out, err = p.communicate()
            return 137, out, err
        return exit_code(p.returncode), out, err

    def reset(self, script, timeout, keep, whole):
        """reset(): in process when the list of what changed is sound (``Restorer``),
        else ``script`` (the bash reset, which then resets the whole tree); the watches
        renewed after either."""
        listed = listed_entries()
        done = False
        if not whole and get(TS).strip() == b"ok":
            kill_user()
            put(TS, b"reset\n", 0o644)  # not ok until done: else the script does it all
            try:
                done = self.restorer.reset(keep)
                if done:
                    empty_scratch()
                    put(TS, b"ok\n", 0o644)
            except OSError as e:
                sys.stderr.write("codemonkeys agent: reset in process failed: %s\n" % e)
                done = False
        if done:
            rc, out, err = 0, b"", b""
        else:
            rc, out, err = self.sh(script, timeout)
        if self.tracker is not None:
            self.tracker.renew(listed, not done and WHOLE_MARK in out)
        return rc, out.replace(WHOLE_MARK + b"\n", b""), err

    def apply(self, script, timeout, spec):
        try:
            said = apply_patch(spec)
        except OSError as e:
            sys.stderr.write("codemonkeys agent: patch in process failed: %s\n" % e)
            said = None
        if said is None:
            return self.sh(script, timeout)
        return 0, said, b""

    def run(self, nonce, timeout, cap, prelude, script):
        out = Capped(cap)
        if prelude:
            rc, o, e = self.sh(prelude, None, umask=0o022)
            if rc != 0:
                return self.answer(nonce, 999, o + e, b"", 0)
        try:
            os.makedirs(R, 0o755, exist_ok=True)
            put(R + "/.run.sh", script, 0o644)
        except OSError as e:
            return self.answer(nonce, 999, str(e).encode(), b"", 0)
        state = get(TS).strip()
        put(TS, b"run\n", 0o644)
        sound = self.tracker is not None
        if sound:
            self.tracker.begin()
        since = self.since = now_ns() - 20_000_000  # the coarse clock of ctime
        rc, over = self.script(out, timeout)
        if user_pids(True):
            state = b""  # a process of the user still alive: the list may be incomplete
        if sound:
            self.tracker.sync()
            entries, sound = self.tracker.taken()
            used = new_entries(entries) if sound else 0
        if not sound:
            entries, used = walk_changes(WD, since)
        with open(TL, "ab") as f:
            f.write(b"".join(k.encode() + os.fsencode(p) + b"\0" for k, p in entries))
        if state == b"ok":
            put(TS, b"ok\n", 0o644)
        if over or used > DISK:
            out.feed(("\n%s\n" % DISK_NOTE).encode())
            rc = 137
        elif rc == 153:
            out.feed(("\n%s\n" % FILE_NOTE).encode())
        head, tail = out.parts()
        self.answer(nonce, rc, head, tail, out.total)

    def script(self, out, timeout):
        """The script as the sandbox user, in its own session, under the time and file
        size limits, its output into ``out``; (exit code, killed for disk)."""

        def drop():
            os.setsid()
            blocks = DISK // 1024 + 1
            resource.setrlimit(resource.RLIMIT_FSIZE, (blocks * 1024, blocks * 1024))
            os.setgroups([])
            os.setgid(U)
            os.setuid(U)

        p = subprocess.Popen(
            ["bash", R + "/.run.sh"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, preexec_fn=drop, env=self.run_env,
        )
        reader = threading.Thread(target=pump, args=(p.stdout, out), daemon=True)
        reader.start()
        done, why = threading.Event(), []
        watchdog = threading.Thread(target=self.watch_run, args=(p.pid, timeout, done, why))
        watchdog.start()
        rc = exit_code(p.wait())  # blocking: Popen.wait(timeout) polls, up to 50 ms late
        done.set()
        watchdog.join()
        kill_group(p.pid)
        kill_user()
        reader.join(10)
        return (137 if "time" in why else rc), "disk" in why

    def watch_run(self, pid, timeout, done, why):
        """Kills the run at its time limit, or when the user wrote more than DISK to the
        work tree (checked every 0.5 s); says which in ``why``."""
        deadline = time.monotonic() + timeout
        while not done.wait(max(0.0, min(0.5, deadline - time.monotonic()))):
            if time.monotonic() >= deadline:
                why.append("time")
                kill_group(pid)
                return
            if self.disk_used() > DISK:
                why.append("disk")
                kill_group(pid)
                kill_user()
                return

    def disk_used(self):
        if self.tracker is not None:
            entries, sound = self.tracker.taken()
            if sound:
                return new_entries(entries)
        return walk_changes(WD, self.since)[1]

    def serve(self):
        stdin = sys.stdin.buffer
        while True:
            line = stdin.readline()
            if not line:
                return
            try:
                nonce, kind, tmo, cap, pre, b64 = line.decode().split()
                timeout = None if tmo == "none" else float(tmo)
                script = base64.b64decode(b64)
                prelude = b"" if pre == "-" else base64.b64decode(pre)
            except ValueError:
                write_all(1, b"@@CMRESP - 254 0 0 0\n")
                continue
            if kind == "run":
                self.run(nonce, timeout or 1e9, int(cap), prelude, script)
                continue
            if kind == "apply":
                rc, out, err = self.apply(script, timeout, json.loads(prelude))
            elif kind in ("reset", "reset-whole"):
                keep = [k.rstrip("/") for k in os.fsdecode(prelude).split("\0") if k]
                rc, out, err = self.reset(script, timeout, keep, kind == "reset-whole")
            else:
                rc, out, err = self.sh(script, timeout)
            self.answer(nonce, rc, out, err, 0)


def pump(stream, out):
    while True:
        data = stream.read1(1 << 16) if hasattr(stream, "read1") else stream.read(1 << 16)
        if not data:
            return
        out.feed(data)


def kill_group(pid):
    try:
        os.killpg(pid, signal.SIGKILL)
    except OSError:
        pass


def main():
    os.makedirs(D, 0o700, exist_ok=True)
    try:
        tracker = Tracker()
    except (OSError, AttributeError):
        tracker = None  # no inotify here: every run walks the tree
    Server(tracker).serve()


if __name__ == "__main__":
    main()
