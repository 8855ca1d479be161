"""The agent's request loop (protocol: ``agent.py``): ``sh``, ``run``, ``apply``,
``reset`` and ``reset-whole``."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading
import time
from typing import IO

from .listing import listed_paths
from .patching import apply_patch
from .processes import exit_code, kill_group, kill_user, user_pids
from .restore import Restorer, empty_scratch
from .settings import SCRIPT_DIR, Settings, get, put, write_all
from .tracking import Tracker, bytes_written, walk_changes

BAD_REQUEST = 254


class Capped:
    """The head and the tail of a stream, each at most ``cap`` bytes, and its size."""

    def __init__(self, cap: int) -> None:
        self.cap, self.head, self.tail, self.total = cap, bytearray(), bytearray(), 0

    def feed(self, data: bytes) -> None:
        self.total += len(data)
        room = self.cap - len(self.head)
        if room > 0:
            self.head += data[:room]
            data = data[room:]
        if data and self.cap > 0:
            self.tail += data
            if len(self.tail) > 2 * self.cap:
                del self.tail[: len(self.tail) - self.cap]

    def parts(self) -> tuple[bytes, bytes]:
        return bytes(self.head), bytes(self.tail[-self.cap :] if self.cap else b"")


class Server:
    def __init__(self, s: Settings, tracker: Tracker | None) -> None:
        self.s = s
        self.tracker = tracker
        self.restorer = Restorer(s)
        self.since = 0
        self.run_env = dict(os.environ, HOME="/tmp/home", USER="nobody", LOGNAME="nobody")
        self.run_env["TMPDIR"] = "/tmp"

    def serve(self) -> None:
        for line in iter(sys.stdin.buffer.readline, b""):
            try:
                nonce, kind, tmo, cap, pre, b64 = line.decode().split()
                timeout = None if tmo == "none" else float(tmo)
                script = base64.b64decode(b64)
                extra = b"" if pre == "-" else base64.b64decode(pre)
            except ValueError:
                write_all(1, b"@@CMRESP - %d 0 0 0\n" % BAD_REQUEST)
                continue
            if kind == "run":
                self.run(nonce, timeout or 1e9, int(cap), extra, script)
                continue
            if kind == "apply":
                rc, out, err = self.apply(script, timeout, extra)
            elif kind in ("reset", "reset-whole"):
                keep = [k.rstrip("/") for k in os.fsdecode(extra).split("\0") if k]
                rc, out, err = self.reset(script, timeout, keep, kind == "reset-whole")
            else:
                rc, out, err = self.sh(script, timeout)
            self.answer(nonce, rc, out, err, 0)

    def answer(self, nonce: str, rc: int, one: bytes, two: bytes, total: int) -> None:
        head = f"@@CMRESP {nonce} {rc} {len(one)} {len(two)} {total}\n".encode()
        write_all(1, head + one + two)

    # -- root commands ------------------------------------------------------------------------
    def sh(
        self, script: bytes, timeout: float | None, umask: int | None = None
    ) -> tuple[int, bytes, bytes]:
        """A root script: (exit code, stdout, stderr); timeout None: none."""
        path = self.s.agent_dir + "/req.sh"
        put(path, script)
        p = subprocess.Popen(
            ["bash", path],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            preexec_fn=None if umask is None else (lambda: _set_umask(umask)),
        )
        try:
            out, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_group(p.pid)
            out, err = p.communicate()
            return 137, out, err
        return exit_code(p.returncode), out, err

    def apply(self, script: bytes, timeout: float | None, spec: bytes) -> tuple[int, bytes, bytes]:
        try:
            said = apply_patch(self.s, json.loads(spec))
        except Exception as e:  # the script then does it: never a lost agent for this
            sys.stderr.write(f"codemonkeys agent: patch in process failed: {e!r}\n")
            said = None
        return (0, said, b"") if said is not None else self.sh(script, timeout)

    def reset(
        self, script: bytes, timeout: float | None, keep: list[str], whole: bool
    ) -> tuple[int, bytes, bytes]:
        """In process when the list of what changed is sound (``Restorer``), else
        ``script`` (the bash reset, which then resets the whole tree); the watches
        renewed after either."""
        listed = listed_paths(self.s.workdir, self.s.touched_list)
        done = False
        if not whole and get(self.s.touched_state).strip() == b"ok":
            kill_user(self.s.uid)
            put(self.s.touched_state, b"reset\n", 0o644)  # else the script does it all
            try:
                done = self.restorer.reset(keep)
                if done:
                    empty_scratch(self.s.uid)
                    put(self.s.touched_state, b"ok\n", 0o644)
            except Exception as e:  # the script then resets the whole tree
                sys.stderr.write(f"codemonkeys agent: reset in process failed: {e!r}\n")
                done = False
        rc, out, err = (0, b"", b"") if done else self.sh(script, timeout)
        if self.tracker is not None:
            self.tracker.renew(listed, not done and self.s.whole_mark in out)
        return rc, out.replace(self.s.whole_mark + b"\n", b""), err

    # -- runs ----------------------------------------------------------------------------------
    def run(self, nonce: str, timeout: float, cap: int, prelude: bytes, script: bytes) -> None:
        """``RUN_LIB``'s ``cm_run``: the script as the sandbox user; then what it changed
        listed for reset and checked against the disk limit."""
        if prelude:
            rc, o, e = self.sh(prelude, None, umask=0o022)
            if rc != 0:
                return self.answer(nonce, self.s.prelude_failed, o + e, b"", 0)
        try:
            os.makedirs(SCRIPT_DIR, 0o755, exist_ok=True)
            # the file size limit, soft and hard, on the script's own first line
            limit = b"ulimit -f %d || exit 125; " % (self.s.disk // 1024 + 1)
            put(SCRIPT_DIR + "/.run.sh", limit + script, 0o644)
        except OSError as e:
            return self.answer(nonce, self.s.prelude_failed, str(e).encode(), b"", 0)
        state = get(self.s.touched_state).strip()
        put(self.s.touched_state, b"run\n", 0o644)  # the list is open until the end
        if self.tracker is not None:
            self.tracker.begin()
        self.since = time.time_ns() - 20_000_000  # 20 ms early: the coarse clock of ctime
        out = Capped(cap)
        rc, over = self.script(out, timeout)
        if user_pids(self.s.uid, True):
            state = b""  # a process of the user still alive: the list may be incomplete
        used = self.list_changes()
        if state == b"ok":
            put(self.s.touched_state, b"ok\n", 0o644)
        if over or used > self.s.disk:
            out.feed(f"\n{self.s.disk_note}\n".encode())
            rc = 137
        elif rc == 153:  # SIGXFSZ: a file past RLIMIT_FSIZE
            out.feed(f"\n{self.s.file_note}\n".encode())
        self.answer(nonce, rc, *out.parts(), out.total)

    def list_changes(self) -> int:
        """Appends what the run changed to reset's list; the bytes the user wrote."""
        if self.tracker is not None:
            self.tracker.sync()
        entries, used = self.changes()
        with open(self.s.touched_list, "ab") as f:
            f.write(b"".join(k.encode() + os.fsencode(p) + b"\0" for k, p in entries))
        return used

    def changes(self) -> tuple[list[tuple[str, str]], int]:
        """What the run changed so far and the bytes the user wrote: the tracker's list
        when it is sound, else (or when reading it fails) the walk by ctime."""
        if self.tracker is not None:
            entries, sound = self.tracker.taken()
            try:
                if sound:
                    return entries, self.written(self.tracker, entries)
            except OSError as e:  # never a lost sandbox or watchdog for it: walk instead
                sys.stderr.write(f"codemonkeys agent: the tracked list failed: {e!r}\n")
        return walk_changes(*self.walk_args())

    def script(self, out: Capped, timeout: float) -> tuple[int, bool]:
        """The script as the sandbox user, in its own session, under the time and file
        size limits, its output into ``out``: (exit code, killed for disk)."""
        p = self.spawn(["bash", SCRIPT_DIR + "/.run.sh"])
        reader = threading.Thread(target=pump, args=(p.stdout, out), daemon=True)
        reader.start()
        done = threading.Event()
        why: list[str] = []  # (a local annotation: never evaluated, fine on Python 3.7)
        watchdog = threading.Thread(target=self.watch_run, args=(p.pid, timeout, done, why))
        watchdog.start()
        rc = exit_code(p.wait())  # blocking: Popen.wait(timeout) polls, up to 50 ms late
        done.set()
        watchdog.join()
        kill_group(p.pid)
        kill_user(self.s.uid)
        reader.join(10)
        return (137 if "time" in why else rc), "disk" in why

    def spawn(self, argv: list[str]) -> subprocess.Popen[bytes]:
        """``argv`` as the sandbox user in a new session (its file size limit is the run
        script's first line). Python 3.9 drops the privileges in C, with no Python run in
        the child (and 3.10 can vfork): a fork that calls back into Python costs ms."""
        uid, out = self.s.uid, subprocess.PIPE
        if sys.version_info >= (3, 9):
            return subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                env=self.run_env, start_new_session=True, user=uid, group=uid, extra_groups=[],
            )  # fmt: skip
        return subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            env=self.run_env, start_new_session=True, preexec_fn=lambda: _drop_to(uid),
        )  # fmt: skip

    def watch_run(self, pid: int, timeout: float, done: threading.Event, why: list[str]) -> None:
        """Kills the run at its time limit, or when the user wrote more than the disk
        limit to the work tree (checked every 0.5 s); says which in ``why``."""
        deadline = time.monotonic() + timeout
        while not done.wait(max(0.0, min(0.5, deadline - time.monotonic()))):
            if time.monotonic() >= deadline:
                why.append("time")
                kill_group(pid)
                return
            if self.changes()[1] > self.s.disk:
                why.append("disk")
                kill_group(pid)
                kill_user(self.s.uid)
                return

    def written(self, tracker: Tracker, entries: list[tuple[str, str]]) -> int:
        """The bytes of the run's entries, and of what it wrote in the user's directories
        of earlier runs (not watched: walked by ctime)."""
        used = bytes_written(self.s.uid, entries, tracker.sizes)
        for top in tracker.older:
            used += walk_changes(self.s.uid, top, top, self.since, tracker.sizes)[1]
        return used

    def walk_args(self) -> tuple[int, str, str, int, dict[str, int]]:
        """``walk_changes``'s arguments for this run (no tracker: directories' sizes
        before it not known)."""
        sizes = {} if self.tracker is None else self.tracker.sizes
        return self.s.uid, self.s.workdir, self.s.workdir, self.since, sizes


def _drop_to(uid: int) -> None:
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)


def _set_umask(mask: int) -> None:
    os.umask(mask)


def pump(stream: IO[bytes], out: Capped) -> None:
    """The run's output into ``out`` as it comes, until every writer is gone."""
    for data in iter(lambda: os.read(stream.fileno(), 1 << 16), b""):
        out.feed(data)


def main() -> None:
    s = Settings(sys.argv[-1])
    os.makedirs(s.agent_dir, 0o700, exist_ok=True)
    try:
        tracker: Tracker | None = Tracker(s)
    except (OSError, AttributeError):
        tracker = None  # no inotify here: every run walks the tree
    Server(s, tracker).serve()
