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
