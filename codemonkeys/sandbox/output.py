"""Bounded capture of a process's output: keeps the head and the tail, never the middle.

A model-written script can print 100 MB (or loop forever printing); we must neither keep
all of it in memory nor lose the end (where tracebacks and verdicts are). The capture keeps
at most ``limit`` bytes of head and ``limit`` bytes of rolling tail while streaming, and
``render`` cuts that down to ``max_chars`` with an explicit marker.
"""

from __future__ import annotations

DECODE_ERRORS = "backslashreplace"
"""Non-UTF-8 bytes show up as ``\\xff`` escapes: never a crash, never silently dropped."""


def omitted_marker(n: int) -> str:
    return f"\n... [{n} characters omitted] ...\n"


class BoundedOutput:
    """Accumulates byte chunks with O(max_chars) memory."""

    def __init__(self, max_chars: int):
        self.max_chars = max(16, int(max_chars))
        self._half = self.max_chars // 2
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0

    def feed(self, chunk: bytes) -> None:
        if not chunk:
            return
        self.total += len(chunk)
        room = self.max_chars - len(self.head)
        if room > 0:
            self.head += chunk[:room]
            chunk = chunk[room:]
            if not chunk:
                return
        self.tail += chunk
        # Trim lazily (amortised O(1) per byte): the tail never holds more than 2x max_chars.
        if len(self.tail) > 2 * self.max_chars:
            del self.tail[: len(self.tail) - self.max_chars]

    @property
    def truncated(self) -> bool:
        return self.total > self.max_chars

    def render(self) -> str:
        """The whole output when it fits, else head + marker + tail (each half the limit)."""
        if not self.truncated:
            return bytes(self.head + self.tail).decode("utf-8", DECODE_ERRORS)
        head_b = bytes(self.head[: self._half])
        rest = self.tail if len(self.tail) >= self._half else self.head[self._half :] + self.tail
        tail_b = bytes(rest[-self._half :])
        omitted = self.total - len(head_b) - len(tail_b)
        head = head_b.decode("utf-8", DECODE_ERRORS)[: self._half]
        tail = tail_b.decode("utf-8", DECODE_ERRORS)[-self._half :]
        return head + omitted_marker(omitted) + tail


def cap_text(text: str, max_chars: int) -> str:
    """The same head + marker + tail rule for text that is already in memory."""
    if len(text) <= max_chars:
        return text
    half = max_chars // 2
    return text[:half] + omitted_marker(len(text) - 2 * half) + text[-half:]


class EndMarked:
    """Feeds a stream to ``sink`` except its closing mark ``\\n@@CMEND <nonce> <status>\\n``
    (printed by our wrapper after the script, with a nonce the script cannot read), held
    back until the stream ends. ``finish`` says whether the mark came and with which exit
    status: a stream without it lost output on the way (see archive.py)."""

    def __init__(self, sink: BoundedOutput, nonce: str):
        self.sink = sink
        self.prefix = f"\n@@CMEND {nonce} ".encode()
        self.keep = len(self.prefix) + 8  # the prefix, a status of up to 3 digits, "\n"
        self.pending = b""

    def feed(self, chunk: bytes) -> None:
        self.pending += chunk
        if len(self.pending) > self.keep:
            self.sink.feed(self.pending[: -self.keep])
            self.pending = self.pending[-self.keep :]

    def finish(self) -> int | None:
        """The status the mark carries (the mark left out of the output), or None when
        the stream ended without it (everything it carried fed as output)."""
        at = self.pending.rfind(self.prefix)
        status = self.pending[at + len(self.prefix) :].rstrip(b"\n") if at >= 0 else b""
        if at < 0 or not status.isdigit() or not self.pending.endswith(b"\n"):
            self.sink.feed(self.pending)
            return None
        self.sink.feed(self.pending[:at])
        return int(status)
