"""The generation state machines step through named states that follow from the saved
record alone, so a trajectory saved after any step resumes there and ends exactly as an
uninterrupted one. Host sandboxes (no Docker), the scripted policy that makes the mistakes
real models make (tests/fixtures/policies/gen_malformed.py)."""

from __future__ import annotations

import json

import pytest

from codemonkeys.execution import ExecutionCache
from codemonkeys.generation.editing import EditingMachine
from codemonkeys.generation.machine import StateMachine
from codemonkeys.generation.records import TrajectoryRecord
from codemonkeys.generation.runtime import GenerationRuntime, OriginalFiles, PrefixWarmer
from codemonkeys.generation.testing import TestingMachine
from codemonkeys.generation.trajectory import new_record
from codemonkeys.sandbox import SandboxPool, SandboxSpec
from codemonkeys.store import RunStore
from tests.conftest import make_git_repo
from tests.integration.test_generation import REPO_FILES, make_config, make_hub, problem


@pytest.fixture
def runtime(tmp_path):
    repo = tmp_path / "repo"
    sha = make_git_repo(repo, REPO_FILES)
    pool = SandboxPool(SandboxSpec(kind="local", repo_path=repo, base_commit=sha), size=1)
    config = make_config("gen_malformed.py", samples=1)
    store = RunStore(tmp_path / "run")
    hub = make_hub(store, config)
    rt = GenerationRuntime(
        problem=problem(),
        config=config,
        test_model=hub.model("primary", problem_id=problem().id, stage="tests"),
        edit_model=hub.model("primary", problem_id=problem().id, stage="edits"),
        cache=ExecutionCache(pool.lease, timeout=config.sandbox.script_timeout_s),
        files=OriginalFiles(repo, None),
        warmer=PrefixWarmer(enabled=False),
    )
    yield rt, store
    rt.close()
    pool.close()


def machine(rt: GenerationRuntime, rec: TrajectoryRecord) -> StateMachine:
    return TestingMachine(rt, rec) if rec.state == "testing" else EditingMachine(rt, rec)


def comparable(rec: TrajectoryRecord) -> dict:
    return json.loads(rec.model_dump_json(exclude={"timing"}))


def test_states_are_named_and_a_record_saved_after_any_step_resumes_there(runtime):
    runtime, store = runtime
    rec = new_record(runtime, 0)
    states: list[str] = []
    saved: list[str] = []
    while rec.state != "finished":
        state = machine(runtime, rec).state()
        states.append(f"{rec.state}.{state.__name__}")
        state()
        saved.append(rec.model_dump_json())

    # testing: no tags, a hanging script, a good script, <done>
    assert states[:8] == [f"testing.{s}" for s in ["ask_model", "read_answer"] * 4]
    # editing: two edits, a path outside the repo, fuzzy SEARCH text, the right edit, <done>
    assert states[8:] == ["editing.write_request"] + [
        f"editing.{s}" for s in ["ask_model", "read_answer"] * 5
    ]
    assert (rec.status, rec.test_approved, rec.edit_approved) == ("done", True, True)
    assert rec.corrections == ["no_tags", "multiple_edits", "edit_error", "edit_error"]

    # every saved step resumes to the same end, asking the model nothing new
    log = store.root / "calls.jsonl"
    calls = log.read_text().count("\n")
    assert calls == rec.calls == 9
    for snapshot in saved[:-1]:
        resumed = TrajectoryRecord.model_validate_json(snapshot)
        while resumed.state != "finished":
            machine(runtime, resumed).run()
        assert comparable(resumed) == comparable(rec)
    assert log.read_text().count("\n") == calls
