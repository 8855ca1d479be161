"""Prompt-cache warm-up gates (no Docker needed): the first call for a shared prefix
completes before the others are sent, and a failing first call still releases them."""

from __future__ import annotations

import threading

import pytest

from codemonkeys.generation.runtime import PrefixWarmer, prefix_digest
from codemonkeys.llm.base import Message

PREFIX = [
    Message(role="system", content="s" * 100),
    Message(role="user", content="ctx", cache=True),
]


class Race:
    """Trajectory 0 takes the gate first (the others start only once it is inside); while
    inside, it waits for any other trajectory to get in too (the event a broken gate sets)
    or gives up after ``hold_s``. Events order everything: no sleeps."""

    def __init__(self, warmer: PrefixWarmer, n: int, leader_fails: bool = False, hold_s=2.0):
        self.warmer, self.n, self.leader_fails, self.hold_s = warmer, n, leader_fails, hold_s
        self.log: list[str] = []
        self._lock = threading.Lock()
        self.leader_inside = threading.Event()
        self.other_inside = threading.Event()
        self.other_got_in_while_leader_inside = False

    def _note(self, what: str) -> None:
        with self._lock:
            self.log.append(what)

    def _call(self, i: int) -> None:
        try:
            with self.warmer.gate(PREFIX + [Message(role="user", content=f"traj {i}")]):
                self._note(f"t{i} in")
                if i == 0:
                    self.leader_inside.set()
                    if self.leader_fails:
                        raise RuntimeError("first call failed")
                    self.other_got_in_while_leader_inside = self.other_inside.wait(self.hold_s)
                else:
                    self.other_inside.set()
                self._note(f"t{i} out")
        except RuntimeError:
            self._note("t0 failed")

    def run(self) -> list[str]:
        leader = threading.Thread(target=self._call, args=(0,))
        leader.start()
        assert self.leader_inside.wait(10), "trajectory 0 never got through the gate"
        others = [threading.Thread(target=self._call, args=(i,)) for i in range(1, self.n)]
        for t in others:
            t.start()
        for t in [leader, *others]:
            t.join(30)
            assert not t.is_alive(), "a trajectory is still waiting at the gate"
        return self.log


def test_first_call_completes_before_others_start():
    race = Race(PrefixWarmer(enabled=True), 5)
    log = race.run()
    assert not race.other_got_in_while_leader_inside
    assert log.index("t0 out") < min(log.index(f"t{i} in") for i in range(1, 5))
    assert sorted(x for x in log if x.endswith(" out")) == [f"t{i} out" for i in range(5)]


def test_failed_first_call_releases_the_others():
    log = Race(PrefixWarmer(enabled=True), 4, leader_fails=True).run()
    assert log.count("t0 failed") == 1
    assert sorted(x for x in log if x.endswith(" out")) == ["t1 out", "t2 out", "t3 out"]


@pytest.mark.parametrize(
    "warmer", [PrefixWarmer(enabled=False), PrefixWarmer(enabled=True, min_chars=10_000)]
)
def test_no_gate_when_disabled_or_prefix_too_small(warmer):
    # no gate: another trajectory gets in while the first is still inside (the first
    # waits for that event; hold_s only bounds the wait when the behaviour is wrong)
    race = Race(warmer, 4, hold_s=30)
    race.run()
    assert race.other_got_in_while_leader_inside


def test_prefix_digest_ignores_messages_after_the_breakpoint():
    a = prefix_digest(PREFIX + [Message(role="user", content="a")])
    b = prefix_digest(PREFIX + [Message(role="user", content="b")])
    assert a == b != prefix_digest([Message(role="user", content="other", cache=True)])
