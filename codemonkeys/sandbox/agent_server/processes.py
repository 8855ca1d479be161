"""The sandbox user's processes: found, and killed."""

from __future__ import annotations

import contextlib
import os
import signal
import time


def user_pids(uid: int, live_only: bool) -> list[int]:
    """The processes of ``uid`` (``live_only``: not zombies, which write nothing; a
    zombie leader whose other threads still run is alive)."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            if os.stat(f"/proc/{name}").st_uid != uid:
                continue
            if live_only and not _alive(name):
                continue
        except (OSError, IndexError):
            continue
        found.append(int(name))
    return found


def _alive(pid: str) -> bool:
    for tid in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(OSError, IndexError):
            if _state(f"{pid}/task/{tid}") not in (b"Z", b"X"):
                return True
    return False


def _state(pid: str) -> bytes:
    with open(f"/proc/{pid}/stat", "rb") as f:
        return f.read().rsplit(b")", 1)[1].split()[0]


def kill_user(uid: int) -> None:
    """Every process of ``uid`` killed, as that user (``kill(-1)`` is the kernel's own
    walk, which a fork in flight cannot outrun twice), and given up to a second to die."""
    if not user_pids(uid, False):
        return
    try:
        pid = os.fork()
    except OSError:  # no pid left (the user's fork bomb holds them all)
        _kill_each(uid)
        return
    if pid == 0:
        try:
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            for _ in range(2):
                with contextlib.suppress(OSError):
                    os.kill(-1, signal.SIGKILL)
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    deadline = time.monotonic() + 1.0  # killed ones take a moment to become zombies
    while user_pids(uid, True) and time.monotonic() < deadline:
        time.sleep(0.002)


def _kill_each(uid: int) -> None:
    """``kill_user`` without a fork: root kills the user's processes one by one until
    none is left (a fork bomb refills what it loses for a while), for up to a second."""
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline and user_pids(uid, True):
        for pid in user_pids(uid, False):  # a zombie leader's live threads too
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)


def kill_group(pid: int) -> None:
    with contextlib.suppress(OSError):
        os.killpg(pid, signal.SIGKILL)


def exit_code(returncode: int) -> int:
    """A shell's exit status: 128 + the signal for a killed process."""
    return 128 - returncode if returncode < 0 else returncode
