"""A tiny in-container command server, so a script run costs no ``docker exec``.

Each ``docker exec`` makes the engine spawn a process through runc: 30-150 ms depending on
load, several times per script run (apply, run, reset). Instead, every DockerSandbox
starts one long-lived bash loop (this agent) over a single attached exec and sends it
requests on stdin; answers come back on stdout. Output capping happens inside the
container (``head -c`` / ``dd`` / ``tail -c``), so 100 MB of output never crosses the
socket. If the agent cannot start or its stream breaks, the sandbox falls back to plain
``docker exec`` calls.

Protocol (one request at a time): ``<kind> <timeout|none> <cap> <base64 script>\\n``;
answer ``@@CMRESP <rc> <len1> <len2> <total>\\n`` + len1 bytes + len2 bytes
(run: head, tail, total output bytes; sh: stdout, stderr).
"""

from __future__ import annotations

import base64
import contextlib
import socket
import time
from typing import Any

AGENT_DIR = "/tmp/.codemonkeys-agent"

AGENT_SCRIPT = r"""
D=/tmp/.codemonkeys-agent
RUNW='timeout -s KILL "$1" bash "$2" & p=$!; wait $p; rc=$?; kill -9 -- -$p 2>/dev/null; exit $rc'
while IFS=' ' read -r kind tmo cap b64; do
  mkdir -p "$D"
  if ! printf '%s' "$b64" | base64 -d > "$D/req.sh" 2>/dev/null; then printf '@@CMRESP 254 0 0 0\n'; continue; fi
  if [ "$kind" = run ]; then
    bash -c "$RUNW" run "$tmo" "$D/req.sh" < /dev/null 2>&1 | { head -c "$cap" > "$D/h"; dd bs=65536 2> "$D/d" | tail -c "$cap" > "$D/t"; }
    rc=${PIPESTATUS[0]}
    rest=$(sed -n 's/^\([0-9][0-9]*\) bytes.*/\1/p' "$D/d"); rest=${rest:-0}
    hs=$(stat -c %s "$D/h"); ts=$(stat -c %s "$D/t")
    printf '@@CMRESP %s %s %s %s\n' "$rc" "$hs" "$ts" "$((hs + rest))"
    cat "$D/h" "$D/t"
  else
    if [ "$tmo" = none ]; then bash "$D/req.sh" < /dev/null > "$D/o" 2> "$D/e"
    else timeout -s KILL "$tmo" bash "$D/req.sh" < /dev/null > "$D/o" 2> "$D/e"; fi
    rc=$?
    printf '@@CMRESP %s %s %s 0\n' "$rc" "$(stat -c %s "$D/o")" "$(stat -c %s "$D/e")"
    cat "$D/o" "$D/e"
  fi
done
"""


class AgentBroken(RuntimeError):
    """The agent's stream timed out, closed or spoke nonsense; the caller drops it."""


class Agent:
    def __init__(self, api: Any, container_id: str, environment: dict[str, str]):
        eid = api.exec_create(
            container_id,
            ["bash", "-c", AGENT_SCRIPT],
            stdin=True,
            stdout=True,
            stderr=True,
            environment=environment,
        )["Id"]
        self._io = api.exec_start(eid, socket=True)
        self.sock: socket.socket = getattr(self._io, "_sock", self._io)
        self._raw = bytearray()  # docker's multiplexed frames, not yet parsed
        self._out = bytearray()  # the agent's stdout

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
        self, kind: str, timeout: float | None, cap: int, script: str, io_timeout: float
    ) -> tuple[int, bytes, bytes, int]:
        """Send one request; (rc, first blob, second blob, total)."""
        payload = base64.b64encode(script.encode("utf-8", "surrogateescape")).decode()
        tmo = "none" if timeout is None else f"{timeout:.3f}"
        try:
            self.sock.sendall(f"{kind} {tmo} {cap} {payload}\n".encode())
        except OSError as e:
            raise AgentBroken(f"cannot send to agent: {e}") from e
        deadline = time.monotonic() + io_timeout
        header = self._line(deadline).split()
        if len(header) != 5 or header[0] != b"@@CMRESP":
            raise AgentBroken(f"bad agent answer {header[:6]!r}")
        rc, n1, n2, total = (int(x) for x in header[1:])
        return rc, self._exact(n1, deadline), self._exact(n2, deadline), total
