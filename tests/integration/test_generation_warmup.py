"""Prompt-cache warm-up gates (no Docker needed): the first call for a shared prefix
completes before the others are sent, and a failing first call still releases them."""

from __future__ import annotations

import threading
import time

import pytest

from codemonkeys.generation.runtime import PrefixWarmer, prefix_digest
from codemonkeys.llm.base import Message

PREFIX = [
    Message(role="system", content="s" * 100),
    Message(role="user", content="ctx", cache=True),
]


def _race(
    warmer: PrefixWarmer, n: int, leader_fails: bool = False
) -> list[tuple[str, float, float]]:
    log: list[tuple[str, float, float]] = []
    lock = threading.Lock()

    def call(i: int) -> None:
        try:
            with warmer.gate(PREFIX + [Message(role="user", content=f"traj {i}")]):
                start = time.monotonic()
                if i == 0 and leader_fails:
                    raise RuntimeError("first call failed")
                time.sleep(0.3 if i == 0 else 0.01)
                with lock:
                    log.append((f"t{i}", start, time.monotonic()))
        except RuntimeError:
            with lock:
                log.append(("failed", start, time.monotonic()))

    threads = [threading.Thread(target=call, args=(0,))]
    threads[0].start()
    time.sleep(0.05)  # trajectory 0 asks first
    threads += [threading.Thread(target=call, args=(i,)) for i in range(1, n)]
    for t in threads[1:]:
        t.start()
    for t in threads:
        t.join(5)
    return log


def test_first_call_completes_before_others_start():
    log = _race(PrefixWarmer(enabled=True), 5)
    first = next(x for x in log if x[0] == "t0")
    others = [x for x in log if x[0] != "t0"]
    assert len(others) == 4
    assert all(o[1] >= first[2] for o in others)


def test_failed_first_call_releases_the_others():
    log = _race(PrefixWarmer(enabled=True), 4, leader_fails=True)
    assert [x[0] for x in log].count("failed") == 1
    assert len([x for x in log if x[0].startswith("t")]) == 3


@pytest.mark.parametrize(
    "warmer", [PrefixWarmer(enabled=False), PrefixWarmer(enabled=True, min_chars=10_000)]
)
def test_no_gate_when_disabled_or_prefix_too_small(warmer):
    log = _race(warmer, 4)
    first = next(x for x in log if x[0] == "t0")
    assert any(o[1] < first[2] for o in log if o[0] != "t0")


def test_prefix_digest_ignores_messages_after_the_breakpoint():
    a = prefix_digest(PREFIX + [Message(role="user", content="a")])
    b = prefix_digest(PREFIX + [Message(role="user", content="b")])
    assert a == b != prefix_digest([Message(role="user", content="other", cache=True)])
