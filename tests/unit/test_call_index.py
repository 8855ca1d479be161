"""The call log is looked up through an on-disk index: start-up and memory do not grow with
the log, the index catches up with lines it has not seen, and never answers from another log."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

from codemonkeys.llm.recording import CallLog, CostTracker, replay_costs
from codemonkeys.store import RunStore


def _call(i: int, *, h: str | None = None, text: str = "", **extra) -> dict:
    return {
        "problem": f"p{i % 3}",
        "stage": "relevance",
        "request_hash": h or f"hash-{i}",
        "cost_usd": 0.001,
        "text": text or f"answer {i}",
        **extra,
    }


def _write_log(path: Path, records: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        for r in records:
            f.write(json.dumps(r) + "\n")


def test_lookup_answers_the_first_answered_call_and_spend_counts_every_call(tmp_path):
    store = RunStore(tmp_path)
    _write_log(
        tmp_path / "calls.jsonl",
        [
            _call(0, h="a", text="first"),
            _call(1, h="a", text="second"),  # the first answer wins
            _call(2, h="b", error="HTTP 500", cost_usd=0.5),  # an error is no answer ...
            _call(3, h="b", text="after the error"),
        ],
    )
    calls = CallLog(store)
    assert calls.lookup("a")["text"] == "first"
    assert calls.lookup("b")["text"] == "after the error"
    assert calls.lookup("missing") is None
    costs = CostTracker()
    replay_costs(calls, costs)
    assert round(costs.total, 6) == 0.503  # ... but its cost counts against the cap
    calls.append(_call(9, h="c", text="new"))
    assert calls.lookup("c")["text"] == "new"
    assert CallLog(RunStore(tmp_path)).lookup("c")["text"] == "new"


def test_the_index_catches_up_with_lines_a_killed_invocation_appended(tmp_path):
    log = tmp_path / "calls.jsonl"
    _write_log(log, [_call(i) for i in range(10)])
    assert CallLog(RunStore(tmp_path)).index.caught_up_lines == 10
    again = CallLog(RunStore(tmp_path))
    assert again.index.caught_up_lines == 0  # nothing already indexed is read again
    # another invocation appended (and was killed before updating the index), cut mid-line
    _write_log(log, [_call(i) for i in range(10, 15)])
    with log.open("a") as f:
        f.write('{"request_hash": "torn", "text": "cut sh')
    resumed = CallLog(RunStore(tmp_path))
    assert resumed.index.caught_up_lines == 5
    assert resumed.lookup("hash-14")["text"] == "answer 14"
    assert resumed.lookup("torn") is None
    resumed.append(_call(20))  # the torn line stays alone on its line
    reopened = CallLog(RunStore(tmp_path))
    assert reopened.lookup("hash-20")["text"] == "answer 20"
    assert reopened.lookup("hash-3")["text"] == "answer 3"


def test_a_replaced_log_or_a_damaged_index_is_rebuilt_never_trusted(tmp_path):
    log = tmp_path / "calls.jsonl"
    _write_log(log, [_call(i, text=f"old {i}") for i in range(5)])
    CallLog(RunStore(tmp_path))
    log.unlink()
    _write_log(log, [_call(i, text=f"new {i}") for i in range(7)])
    assert CallLog(RunStore(tmp_path)).lookup("hash-2")["text"] == "new 2"
    log.write_text("")  # a log shorter than the index
    assert CallLog(RunStore(tmp_path)).lookup("hash-2") is None
    _write_log(log, [_call(1, text="again")])
    (tmp_path / "calls.index.sqlite").write_bytes(b"not a database at all" * 100)
    for extra in ("-wal", "-shm"):
        Path(f"{tmp_path / 'calls.index.sqlite'}{extra}").unlink(missing_ok=True)
    assert CallLog(RunStore(tmp_path)).lookup("hash-1")["text"] == "again"


def test_opening_a_large_log_does_not_hold_it_in_memory(tmp_path):
    """20,000 calls of 2 KB answers (40 MB): the old loader kept every record in RAM."""
    _write_log(tmp_path / "calls.jsonl", [_call(i, text="x" * 2000) for i in range(20_000)])
    CallLog(RunStore(tmp_path))  # first open: builds the index
    tracemalloc.start()
    try:
        calls = CallLog(RunStore(tmp_path))
        assert calls.lookup("hash-12345")["text"] == "x" * 2000
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 5_000_000, f"{peak / 1e6:.1f} MB allocated to open the log"


def test_concurrent_appends_are_indexed_once_each(tmp_path):
    """Many threads append at once (as trajectories do); a later start must neither miss a
    call nor count one's cost twice."""
    import threading

    calls = CallLog(RunStore(tmp_path))
    threads = [
        threading.Thread(target=lambda k=k: [calls.append(_call(k * 100 + i)) for i in range(50)])
        for k in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    reopened = CallLog(RunStore(tmp_path))
    assert reopened.index.caught_up_lines == 0
    assert all(reopened.lookup(f"hash-{k * 100 + i}") for k in range(8) for i in range(50))
    costs = CostTracker()
    replay_costs(reopened, costs)
    assert round(costs.total, 6) == 0.4


def test_a_relative_run_directory_logs_and_finds_calls_where_documented(tmp_path, monkeypatch):
    """runs/<run>/calls.jsonl, not runs/<run>/runs/<run>/calls.jsonl (the index and the
    log must agree on the file)."""
    monkeypatch.chdir(tmp_path)
    calls = CallLog(RunStore(Path("runs") / "r"))
    for i in range(3):
        calls.append(_call(i))
    assert calls.lookup("hash-2")["text"] == "answer 2"
    assert len((tmp_path / "runs" / "r" / "calls.jsonl").read_text().splitlines()) == 3
    assert CallLog(RunStore(Path("runs/r"))).lookup("hash-1")["text"] == "answer 1"
