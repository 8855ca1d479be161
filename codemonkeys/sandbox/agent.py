"""The in-container command server, so a script run costs no ``docker exec``.

Each ``docker exec`` makes the engine spawn a process through runc: 30-150 ms depending on
load, several times per script run (apply, run, reset). Instead, every DockerSandbox
starts one long-lived server (this agent, as root) over a single attached exec and sends it
requests on stdin; answers come back on stdout. Output capping happens inside the
container, so 100 MB of output never crosses the socket. Two servers keep one contract:

- the ``agent_server`` package under the image's own python3 (``PY_LAUNCH``: root's, not
  writable by others, 3.7 or later): no process per request but the command itself,
  inotify instead of a walk of the tree per run, patches and resets in process;
- else this module's bash loop (``AGENT_SCRIPT`` with ``RUN_LIB``), which the plain
  ``docker exec`` path uses too when no agent can start.

Model-written code never runs as root: ``run`` requests execute as the unprivileged
sandbox uid (``SANDBOX_UID``), which cannot read the agent's ``/proc`` entries, its files
(``AGENT_DIR``, mode 700) or its stdout. Every request carries a random nonce that the
answer must echo, so even bytes that did reach the channel could not pass for an answer or
shift the stream: a mismatch breaks the agent (an infrastructure error).

Protocol (one request at a time):
``<nonce> <kind> <timeout|none> <cap> <base64 extra|-> <base64 script>\\n``;
answer ``@@CMRESP <nonce> <rc> <len1> <len2> <total>\\n`` + len1 bytes + len2 bytes
(run: head, tail, total output bytes; the others: stdout, stderr). Kinds: ``run`` (extra:
a root prelude, e.g. writing queued files), ``sh`` (a root script), and three the Python
server may do in process, running the script only when it cannot: ``apply`` (extra: JSON
of the patch and its paths), ``reset`` and ``reset-whole`` (extra: the kept untracked
paths, NUL-separated). The bash server runs every kind but ``run`` as ``sh``.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import io
import json
import secrets
import shlex
import socket
import time
import zipfile
from pathlib import Path
from typing import Any

from codemonkeys.sandbox.common import GIT_ARGS, GIT_ENV, GIT_UNSET, METHOD_TAG

PRIVATE_ROOT = "/var/lib/codemonkeys"
AGENT_DIR = f"{PRIVATE_ROOT}/agent"
SANDBOX_UID = 65534
"""Model-written code runs as this uid (``nobody`` in Debian/Ubuntu images)."""
TOUCHED_LIST = f"{PRIVATE_ROOT}/touched"
"""What changed in the work tree since the last reset (NUL-separated, ``o<path>``: the
script user's entries and the paths patches wrote; ``d<path>``: directories whose entries
changed). Valid only while ``TOUCHED_STATE`` holds ``ok``; reset then cleans and re-owns
just these (see ``tracked_reset.touched_restore_script``), else the whole tree."""
TOUCHED_STATE = f"{TOUCHED_LIST}.state"
MAX_TOUCHED = 2000
"""More changed entries than this since the last reset: clean the whole tree instead."""
WHOLE_RESET_MARK = "@@codemonkeys-whole-reset@@"
"""A line reset prints when it reset the whole tree (the Python agent then watches the
whole tree again: see agent_server.py)."""
DISK_LIMIT_NOTE = "[codemonkeys: the script exceeded the sandbox disk limit and was killed]"
FILE_LIMIT_NOTE = "[codemonkeys: the script wrote a file larger than the sandbox disk limit]"

# Shell functions shared by the agent and the plain `docker exec` fallback; they expect
# U (sandbox uid), WD (work tree), DISK (bytes), D (a root-only directory) to be set.
# cm_run: the script runs as U in its own process group under `timeout -s KILL`, with
# RLIMIT_FSIZE at the disk limit; a watchdog sums what U wrote to the (disk-backed) work
# tree since the run began and kills the run past DISK. Afterwards every process of U is
# killed, so nothing outlives the run (setsid escapees included).
RUN_LIB = (
    f"TL={TOUCHED_LIST}; TS={TOUCHED_STATE}\n"
    + r"""
cm_userprocs() {  # any process of U left? (builtins only: /proc/<pid> belongs to its uid)
  local d; for d in /proc/[0-9]*; do [ -O "$d" ] || [ ! -e "$d" ] || return 0; done; return 1
}
cm_killuser() {
  if cm_userprocs; then setpriv --reuid="$U" --regid="$U" --clear-groups bash -c 'kill -9 -1; kill -9 -1' 2>/dev/null; fi
}
cm_over() {  # did U write more than DISK to the work tree since the run began? (ctime:
  # a script can date its files' mtime back, never their ctime)
  if cm_userlive; then ok=; fi  # before the walk: nothing of U may write behind it
  find "$WD" -xdev -path "$WD/.git" -prune -o -user "$U" -cnewer "$D/runstamp" -printf '%b\n' > "$D/du" 2>/dev/null
  local b s=0; while read -r b; do s=$((s + b)); done < "$D/du"
  [ $((s * 512)) -gt "$DISK" ]
}
cm_watch() {  # ticks on a read timeout (no sleep child left behind when killed)
  [ -p "$D/tick" ] || mkfifo -m 600 "$D/tick"; exec 9<> "$D/tick"
  while ! read -r -t 0.5 -u 9 _; do
    if cm_over; then echo 1 > "$D/disk"; kill -9 -- "-$1" 2>/dev/null; cm_killuser; return; fi
  done
}
cm_stopwatch() {  # the watchdog and a find it may be running, nothing left behind
  kill -STOP "$1" 2>/dev/null
  local d pp kids=(); for d in /proc/[0-9]*; do
    read -r _ _ _ pp _ 2>/dev/null < "$d/stat" && [ "$pp" = "$1" ] && kids+=("${d#/proc/}")
  done
  kill -9 "$1" "${kids[@]}" 2>/dev/null; wait "$1" 2>/dev/null
}
cm_userlive() {  # a process of U not dead yet? (a zombie writes nothing more)
  local d l; for d in /proc/[0-9]*; do
    [ -O "$d" ] && continue; read -r l < "$d/stat" 2>/dev/null || continue
    l=${l##*) }; case ${l%% *} in Z|X) ;; *) return 0;; esac
  done; return 1
}
cm_track() {  # after the run, U's processes killed: one walk of the work tree gives the
  # disk check (what U wrote since $1, microseconds) and the list of entries that changed
  # (U's own, directories) for reset; the list stays valid ($2 = ok) only if no process of
  # U was alive when the walk began (then nothing can change behind it)
  local since b s=0 now ok=$2
  if [ -n "$1" ]; then printf -v since '@%d.%06d' $(($1 / 1000000)) $(($1 % 1000000))
  else printf -v now '%(%s)T' -1; since="@$((now - 2))"; fi
  if cm_userlive; then ok=; fi  # before the walk: nothing of U may write behind it
  find "$WD" -xdev -path "$WD/.git" -prune -o -newerct "$since" \( -user "$U" -fprintf "$D/du" '%b\n' -printf 'o%p\0' -o -type d -printf 'd%p\0' \) >> "$TL" 2>/dev/null || ok=
  if [ "$ok" = ok ]; then echo ok > "$TS"; fi
  while read -r b; do s=$((s + b)); done < "$D/du"
  [ $((s * 512)) -gt "$DISK" ]
}
cm_run() {
  local st=; read -r st < "$TS" 2>/dev/null; echo run > "$TS"  # the list is open until cm_track
  local t0=${EPOCHREALTIME/[.,]/}; [ -z "$t0" ] || t0=$((10#$t0 - 20000))  # 20 ms early: the coarse clock of ctime
  : > "$D/disk"; : > "$D/runstamp"
  ( ulimit -f $(( DISK / 1024 + 1 )) 2>/dev/null
    export HOME=/tmp/home USER=nobody LOGNAME=nobody TMPDIR=/tmp
    exec timeout -s KILL "$1" setpriv --reuid="$U" --regid="$U" --clear-groups bash "$2" ) < /dev/null &
  p=$!
  cm_watch "$p" > /dev/null 2>&1 < /dev/null & w=$!
  wait "$p" 2>/dev/null; rc=$?  # no "Killed" job notice of our wrapper in the output
  cm_stopwatch "$w"; kill -9 -- "-$p" 2>/dev/null; cm_killuser
  if cm_track "$t0" "$st" || [ -s "$D/disk" ]; then printf '\n%s\n' """
    + shlex.quote(DISK_LIMIT_NOTE)
    + r"""; rc=137
  elif [ "$rc" = 153 ]; then printf '\n%s\n' """
    + shlex.quote(FILE_LIMIT_NOTE)
    + r"""; fi
  return "$rc"
}
"""
)

AGENT_SCRIPT = (
    f"U=$1; WD=$2; DISK=$3; D={AGENT_DIR}; R=/tmp/codemonkeys\n"
    f'mkdir -p -m 700 {PRIVATE_ROOT} "$D"\n'
    + RUN_LIB
    + r"""
sizes() {  # SZ: the files' sizes, space-separated (no subshell)
  stat -c %s "$@" > "$D/sz"; local n; SZ=; while read -r n; do SZ+="${SZ:+ }$n"; done < "$D/sz"
}
while IFS=' ' read -r nonce kind tmo cap pre b64; do
  if [ "$kind" = run ]; then
    : > "$D/o"
    if { [ "$pre" = - ] || { base64 -d <<< "$pre" > "$D/pre.sh" && (umask 022; . "$D/pre.sh") < /dev/null > "$D/o" 2>&1; }; } \
       && { [ -d "$R" ] || mkdir -p -m 755 "$R"; } && base64 -d <<< "$b64" > "$R/.run.sh" 2>> "$D/o"; then
      cm_run "$tmo" "$R/.run.sh" 2>&1 | { head -c "$cap" > "$D/h"; dd bs=65536 2> "$D/d" | tail -c "$cap" > "$D/t"; }
      rc=${PIPESTATUS[0]}
      rest=0; while read -r n unit _; do [ "$unit" = bytes ] && rest=$n; done < "$D/d"
      sizes "$D/h" "$D/t"; read -r hs ts <<< "$SZ"
      printf '@@CMRESP %s %s %s %s %s\n' "$nonce" "$rc" "$hs" "$ts" "$((hs + rest))"
      cat "$D/h" "$D/t"
    else
      sizes "$D/o"; printf '@@CMRESP %s 999 %s 0 0\n' "$nonce" "$SZ"; cat "$D/o"
    fi
    continue
  fi
  if ! base64 -d <<< "$b64" > "$D/req.sh" 2>/dev/null; then printf '@@CMRESP %s 254 0 0 0\n' "$nonce"; continue; fi
  if [ "$tmo" = none ]; then ( . "$D/req.sh" ) < /dev/null > "$D/o" 2> "$D/e"
  else timeout -s KILL "$tmo" bash "$D/req.sh" < /dev/null > "$D/o" 2> "$D/e"; fi
  rc=$?
  sizes "$D/o" "$D/e"; printf '@@CMRESP %s %s %s 0\n' "$nonce" "$rc" "$SZ"
  [ "$SZ" = "0 0" ] || cat "$D/o" "$D/e"
done
"""
)

PYTHONS = ("/usr/bin/python3", "/usr/local/bin/python3", "/opt/miniconda3/bin/python3")
# The Python agent (the agent_server package, given as a base64 zip in $0, unpacked into
# the root-only AGENT_DIR) under the image's first python3 that is root's, not writable by
# others and at least 3.7; none: exit 97 (the sandbox then starts the bash agent).
PY_LAUNCH = (
    f"Z={AGENT_DIR}/server.zip; mkdir -p -m 700 {PRIVATE_ROOT} {AGENT_DIR} || exit 97\n"
    'base64 -d > "$Z.new" <<< "$0" && mv -f "$Z.new" "$Z" || exit 97\n'
    f"for p in {' '.join(PYTHONS)}; do\n"
    + r"""  [ -x "$p" ] || continue; read -r o m < <(stat -L -c '%u %a' "$p") || continue
  [ "$o" = 0 ] && [ $((8#$m & 022)) = 0 ] || continue
  "$p" -I -S -c 'import sys; sys.exit(sys.version_info < (3, 7))' < /dev/null > /dev/null 2>&1 || continue
  exec "$p" -I -S -c 'import sys; sys.path.insert(0, sys.argv[1]); from cm_agent.server import main; main()' "$Z" "$1"
done
exit 97
"""
)


@functools.cache
def _server_zip() -> str:
    """The agent_server package as a zip (package ``cm_agent``), base64."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for path in sorted((Path(__file__).parent / "agent_server").glob("*.py")):
            z.writestr(f"cm_agent/{path.name}", path.read_text())
    return base64.b64encode(buf.getvalue()).decode()


def python_agent_argv(uid: int, workdir: str, disk_limit: int) -> list[str]:
    """The command that starts the Python agent (see PY_LAUNCH) with its settings."""
    settings = {
        "uid": uid,
        "workdir": workdir,
        "disk": disk_limit,
        "agent_dir": AGENT_DIR,
        "touched_list": TOUCHED_LIST,
        "touched_state": TOUCHED_STATE,
        "max_touched": MAX_TOUCHED,
        "disk_note": DISK_LIMIT_NOTE,
        "file_note": FILE_LIMIT_NOTE,
        "whole_mark": WHOLE_RESET_MARK,
        "method_tag": METHOD_TAG,
        "prelude_failed": PRELUDE_FAILED,
        "git": {"unset": GIT_UNSET, "env": GIT_ENV, "args": GIT_ARGS},
    }
    return ["bash", "-c", PY_LAUNCH, _server_zip(), json.dumps(settings)]


PRELUDE_FAILED = 999
"""rc (no process can exit with it) of a run whose root prelude (writing the script file)
failed: the sandbox's failure, not the script's."""


class AgentBroken(RuntimeError):
    """The agent's stream timed out, closed or spoke nonsense; the caller drops it."""


class Agent:
    def __init__(
        self,
        api: Any,
        container_id: str,
        environment: dict[str, str],
        *,
        workdir: str,
        disk_limit: int,
        uid: int = SANDBOX_UID,
        python: bool = True,
    ):
        """``python``: the Python agent (agent_server.py), else the bash one."""
        argv = (
            python_agent_argv(uid, workdir, disk_limit)
            if python
            else ["bash", "-c", AGENT_SCRIPT, "agent", str(uid), workdir, str(disk_limit)]
        )
        self.python = python
        eid = api.exec_create(
            container_id,
            argv,
            stdin=True,
            stdout=True,
            stderr=True,
            environment=environment,
            user="0",
        )["Id"]
        self._io = api.exec_start(eid, socket=True)
        self.sock: socket.socket = getattr(self._io, "_sock", self._io)
        self._raw = bytearray()  # docker's multiplexed frames, not yet parsed
        self._out = bytearray()  # the agent's stdout
        try:  # it answers, or it is not started
            rc, out, _, _ = self.call("sh", 30, 0, "echo ok", io_timeout=60)
        except AgentBroken:
            self.close()
            raise
        if rc != 0 or out != b"ok\n":
            self.close()
            raise AgentBroken(f"agent self-test answered {rc} {out!r}")

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.sock.close()

    def _recv(self, deadline: float) -> None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AgentBroken("no answer in time")
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(1 << 16)
        except (TimeoutError, OSError) as e:
            raise AgentBroken(f"agent stream: {e}") from e
        if not data:
            raise AgentBroken("agent stream closed")
        self._raw += data
        while len(self._raw) >= 8:
            size = int.from_bytes(self._raw[4:8], "big")
            if len(self._raw) < 8 + size:
                break
            if self._raw[0] == 1:
                self._out += self._raw[8 : 8 + size]
            del self._raw[: 8 + size]

    def _line(self, deadline: float) -> bytes:
        while (i := self._out.find(b"\n")) < 0:
            self._recv(deadline)
        line = bytes(self._out[: i + 1])
        del self._out[: i + 1]
        return line

    def _exact(self, n: int, deadline: float) -> bytes:
        while len(self._out) < n:
            self._recv(deadline)
        data = bytes(self._out[:n])
        del self._out[:n]
        return data

    def call(
        self,
        kind: str,
        timeout: float | None,
        cap: int,
        script: str,
        io_timeout: float,
        prelude: str = "",
    ) -> tuple[int, bytes, bytes, int]:
        """Send one request; (rc, first blob, second blob, total). ``prelude`` (run only)
        runs as root before the script, e.g. to write the script's file."""
        encode = lambda s: base64.b64encode(s.encode("utf-8", "surrogateescape")).decode()  # noqa: E731
        nonce = secrets.token_hex(16)
        tmo = "none" if timeout is None else f"{timeout:.3f}"
        pre = encode(prelude) if prelude else "-"
        try:
            self.sock.sendall(f"{nonce} {kind} {tmo} {cap} {pre} {encode(script)}\n".encode())
        except OSError as e:
            raise AgentBroken(f"cannot send to agent: {e}") from e
        deadline = time.monotonic() + io_timeout
        header = self._line(deadline).split()
        if len(header) != 6 or header[0] != b"@@CMRESP" or header[1] != nonce.encode():
            raise AgentBroken(f"bad agent answer {header[:6]!r} (expected nonce {nonce})")
        rc, n1, n2, total = (int(x) for x in header[2:])
        return rc, self._exact(n1, deadline), self._exact(n2, deadline), total
