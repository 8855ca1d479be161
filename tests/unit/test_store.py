import logging
from pathlib import Path

from pydantic import BaseModel

from codemonkeys.store import RunStore


class Rec(BaseModel):
    value: int


def test_records_round_trip_and_stale_fingerprints_are_not_reused(tmp_path, caplog):
    store = RunStore(tmp_path)
    store.save_record("django__django-1", "thing", Rec(value=3), "fp1")
    assert store.load_record("django__django-1", "thing", Rec, "fp1") == Rec(value=3)
    with caplog.at_level(logging.WARNING):
        assert store.load_record("django__django-1", "thing", Rec, "fp2") is None
    assert "different config" in caplog.text
    # kept aside, not deleted; and not reused on the next load either
    assert list((store.problem_dir("django__django-1") / "stale").glob("thing.*.json"))
    assert store.load_record("django__django-1", "thing", Rec, "fp1") is None


def test_atomic_write_leaves_no_temp_files_and_truncated_jsonl_lines_are_skipped(tmp_path):
    store = RunStore(tmp_path)
    store.write_json(tmp_path / "a.json", {"x": 1})
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]
    store.append_jsonl(tmp_path / "l.jsonl", {"n": 1})
    with open(tmp_path / "l.jsonl", "a") as f:
        f.write('{"n": 2, "cut sh')  # a kill mid-write
    store2 = RunStore(tmp_path)
    store2.append_jsonl(tmp_path / "l.jsonl", {"n": 3})
    fresh = RunStore(tmp_path)  # the next process after the kill
    fresh.append_jsonl(tmp_path / "l.jsonl", {"n": 4})
    assert [r["n"] for r in fresh.read_jsonl(tmp_path / "l.jsonl")] == [1, 3, 4]


def test_a_relative_run_dir_keeps_the_documented_layout(tmp_path, monkeypatch):
    """`swebench run`'s default runs/swebench-verified and any --run-dir a user types."""
    from codemonkeys.llm.recording import CallLog

    monkeypatch.chdir(tmp_path)
    store = RunStore(Path("runs/swebench-verified"))
    store.save_record("django__django-1", "result", Rec(value=1), "fp")
    store.write_json(Path("status.json"), {"status": "finished"})
    CallLog(store).append({"problem": "django__django-1", "request_hash": "h", "text": "hi"})
    run = tmp_path / "runs" / "swebench-verified"
    assert (run / "problems" / "django__django-1" / "result.json").is_file()
    assert (run / "status.json").is_file()
    assert (run / "calls.jsonl").is_file()
    assert not (run / "runs").exists()
    monkeypatch.chdir(tmp_path / "runs")  # the same records, whatever the cwd later
    assert store.load_record("django__django-1", "result", Rec, "fp") == Rec(value=1)


def _prompt(i: int) -> dict:
    return {"request_hash": f"h{i}", "stage": "edits", "messages": [{"content": f"p{i} " * 500}]}


def test_a_prompt_cut_by_a_kill_loses_only_itself_and_later_prompts_survive(tmp_path):
    """A kill mid-append used to lose every later prompt (or crash reading: zlib.error)."""
    store = RunStore(tmp_path)
    for i in range(3):
        store.append_prompt("p1", _prompt(i))
    path = store.problem_dir("p1") / "prompts.jsonl.gz"
    whole = path.read_bytes()
    second_member_end = len(whole) - (len(whole) // 3) // 2  # inside the third member
    path.write_bytes(whole[:second_member_end])  # the kill
    for i in range(3, 5):  # the resumed run appends more
        RunStore(tmp_path).append_prompt("p1", _prompt(i))
    hashes = [r["request_hash"] for r in RunStore(tmp_path).read_prompts("p1")]
    assert hashes == ["h0", "h1", "h3", "h4"]


def test_sigkill_while_appending_prompts_keeps_every_complete_one(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import textwrap

    from tests.conftest import ROOT

    child = textwrap.dedent(
        f"""
        import sys
        from codemonkeys.store import RunStore
        store = RunStore({str(tmp_path)!r})
        i = 0
        while True:
            store.append_prompt("p1", {{"request_hash": f"h{{i}}", "messages": ["x" * 200000]}})
            i += 1
            if i == 20:
                print("READY", flush=True)
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", child], stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    try:
        assert proc.stdout.readline().strip() == "READY"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(30)
    store = RunStore(tmp_path)
    before = store.read_prompts("p1")
    assert len(before) >= 20
    assert [r["request_hash"] for r in before] == [f"h{i}" for i in range(len(before))]
    store.append_prompt("p1", {"request_hash": "after-the-kill", "messages": []})
    after = store.read_prompts("p1")
    assert [r["request_hash"] for r in after] == [r["request_hash"] for r in before] + [
        "after-the-kill"
    ]


def test_lone_surrogates_are_stored_and_read_back_exactly(tmp_path):
    """JSON APIs can return lone surrogates ("\\udcff"); bytes decoded with surrogateescape
    carry them too. Every kind of write keeps them (escaped), never UnicodeEncodeError."""
    store = RunStore(tmp_path)
    text = "ok \udcff and caf\u00e9"
    store.append_jsonl(tmp_path / "l.jsonl", {"text": text})
    store.write_json(tmp_path / "r.json", {"text": text})
    store.append_prompt("p1", {"messages": [{"content": text}]})
    assert store.read_jsonl(tmp_path / "l.jsonl") == [{"text": text}]
    assert store.read_json(tmp_path / "r.json") == {"text": text}
    assert store.read_prompts("p1") == [{"messages": [{"content": text}]}]
    # plain non-ASCII text stays readable in the files
    store.write_json(tmp_path / "plain.json", {"text": "caf\u00e9"})
    assert "caf\u00e9" in (tmp_path / "plain.json").read_text(encoding="utf-8")


def test_a_model_answer_with_lone_surrogates_is_cleaned_at_the_llm_boundary(tmp_path):
    from codemonkeys.llm.base import Completion, Message
    from codemonkeys.llm.recording import CallLog, CostTracker, EndpointLimit, RecordingModel

    class Garbled:
        name = "garbled"

        def complete(self, messages, **kw):
            return Completion(text=f"answer {len(messages)} \udcff")

    store = RunStore(tmp_path)
    model = RecordingModel(
        Garbled(),
        calls=CallLog(store),
        costs=CostTracker(),
        limit=EndpointLimit(1),
        problem_id="p1",
        stage="edits",
    )
    first = model.complete([Message(role="user", content="hi")], temperature=0, max_tokens=9)
    assert first.text == "answer 1 \ufffd"
    # the answer goes back into the conversation: hashing, sending and logging all work
    history = [
        Message(role="user", content="hi"),
        Message(role="assistant", content=first.text),
        Message(role="user", content="more \udcff"),
    ]
    second = model.complete(history, temperature=0, max_tokens=9)
    assert second.text == "answer 3 \ufffd"
    assert [c["text"] for c in CallLog(store).records()] == [first.text, second.text]
