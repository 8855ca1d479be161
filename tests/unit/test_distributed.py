"""The distributed executor's parts that need no cluster: Ray stays unimported without
--ray, the coordinator's limits, and the worker-to-driver record stream reproducing the
local layout (the cluster itself: tests/integration/test_distributed.py)."""

from __future__ import annotations

import asyncio
import gzip
import json
import shutil
import socket
import subprocess
import sys

import pytest

from codemonkeys.config import Config
from codemonkeys.distributed.coordinator import STOPPED, Coordinator
from codemonkeys.distributed.driver import apply_event, problem_files
from codemonkeys.distributed.worker import StreamingRunStore
from codemonkeys.llm.recording import CallLog
from codemonkeys.pipeline import open_run
from codemonkeys.progress import Progress
from codemonkeys.run_records import ProblemResult, StageTimes
from tests.conftest import ROOT


def test_ray_is_not_imported_without_ray():
    code = (
        "import sys\n"
        "import codemonkeys.cli, codemonkeys.swebench.run, codemonkeys.ensemble_run\n"
        "import codemonkeys.distributed, codemonkeys.distributed.driver\n"
        "from codemonkeys.config import Config\n"
        "from codemonkeys.distributed import ray_options\n"
        "assert ray_options(None, Config()) is None\n"
        "print('ray' in sys.modules)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert proc.stdout.strip() == "False"


def test_ray_options_from_the_flag_or_the_config():
    from codemonkeys.distributed import ray_options

    assert ray_options("10.0.0.1:6379", Config()).address == "10.0.0.1:6379"
    cfg = Config.model_validate({"run": {"executor": "ray", "ray_resource": "gpu_boxes"}})
    opts = ray_options(None, cfg)
    assert (opts.address, opts.resource) == ("auto", "gpu_boxes")


def test_coordinator_grants_slots_per_endpoint_and_takes_back_a_dead_attempts():
    async def scenario():
        c = Coordinator({"openai|": 2}, None, None, {})
        assert await c.acquire("openai|", "a#1")
        assert await c.acquire("openai|", "a#1")
        third = asyncio.ensure_future(c.acquire("openai|", "b#1"))
        await asyncio.sleep(0)  # let it queue
        assert not third.done()  # the endpoint's limit holds across attempts
        assert await c.release_attempt("a#1") == 2  # the attempt's node died
        assert await third
        assert await c.peaks() == {"openai|": 2}
        await c.stop()
        assert await c.acquire("openai|", "c#1") is False  # no new call after Ctrl-C

    asyncio.run(scenario())


def test_coordinator_books_spend_against_the_caps():
    async def scenario():
        c = Coordinator({}, 1.0, 0.6, {"p1": 0.5})
        assert await c.check("p1") is None
        await c.add("p1", 0.2)
        assert "per problem" in (await c.check("p1"))
        assert await c.check("p2") is None
        await c.add("p2", 0.4)
        assert "run cost cap" in (await c.check("p2"))
        await c.stop()
        assert await c.check("p3") == STOPPED

    asyncio.run(scenario())


def test_coordinator_streams_events_in_order():
    async def scenario():
        c = Coordinator({}, None, None, {})
        waiting = asyncio.ensure_future(c.pull(30))
        await c.push([1, 2])
        await c.push([3])
        assert await waiting == [1, 2, 3]  # the long poll woke and took both, in order
        assert await c.pull(0) == []

    asyncio.run(scenario())


def test_worker_records_stream_into_the_driver_run_in_the_local_layout(tmp_path):
    """Everything a worker writes (records, call log, prompts, stale moves) lands in the
    driver's run directory, and what a retry is seeded with answers the calls."""
    rt = open_run(tmp_path / "run", Config())
    events: list = []
    worker = StreamingRunStore(tmp_path / "node" / "run", lambda evs: events.extend(evs))
    worker.save_record("p1", "timing", StageTimes(seconds={"context": 1.5}), "fp")
    calls = CallLog(worker)
    call = {"problem": "p1", "stage": "tests", "request_hash": "h1", "cost_usd": 0.25}
    calls.append({**call, "text": "answer"})
    worker.append_prompt("p1", {"request_hash": "h1", "messages": ["hi"]})
    worker.append_jsonl(worker.problem_dir("p1") / "relevance_decisions.jsonl", {"f": "a.py"})
    worker.save_record("p1", "result", ProblemResult(id="p1", status="done"), "fp")
    worker.archive_stale(worker.problem_dir("p1") / "result.json")

    for e in events:
        apply_event(rt, ("p1#1", *e))

    d = rt.store.root / "problems" / "p1"
    assert json.loads((d / "timing.json").read_text())["data"]["seconds"] == {"context": 1.5}
    assert not (d / "result.json").exists() and list((d / "stale").iterdir())
    assert rt.store.read_prompts("p1") == [{"request_hash": "h1", "messages": ["hi"]}]
    assert rt.store.read_jsonl(d / "relevance_decisions.jsonl") == [{"f": "a.py"}]
    assert rt.hub.calls.lookup("h1")["text"] == "answer"  # indexed: a rerun is answered
    assert rt.costs.by_problem["p1"] == 0.25
    # a retry on another node starts from these records and this call
    files = problem_files(rt, "p1")
    assert "problems/p1/timing.json" in files and "problems/p1/prompts.jsonl.gz" not in files
    assert not any("stale" in name for name in files)
    assert json.loads(files["calls.jsonl"])["request_hash"] == "h1"
    # a later invocation finds each problem's calls in the log it resumes, its own line
    # even when another problem sent the same request first
    rt.hub.calls.append({"problem": "p2", "stage": "tests", "request_hash": "h2", "text": "x"})
    rt.hub.calls.append({"problem": "p3", "stage": "tests", "request_hash": "h1", "text": "y"})
    rt.close()
    again = open_run(tmp_path / "run", Config())
    seeded = {p: problem_files(again, p).get("calls.jsonl", b"") for p in ("p1", "p2", "p3")}
    assert [json.loads(x)["request_hash"] for x in seeded["p1"].splitlines()] == ["h1"]
    assert json.loads(seeded["p2"])["text"] == "x"
    assert json.loads(seeded["p3"])["text"] == "y"
    with gzip.open(d / "prompts.jsonl.gz") as f:
        assert len(f.read().splitlines()) == 1
    again.close()
    # an index rebuilt from the log (lost, or of an older version) finds the same lines
    for suffix in ("", "-wal", "-shm"):
        (tmp_path / "run" / f"calls.index.sqlite{suffix}").unlink(missing_ok=True)
    rebuilt = open_run(tmp_path / "run", Config())
    assert {p: problem_files(rebuilt, p).get("calls.jsonl", b"") for p in seeded} == seeded
    rebuilt.close()


def test_progress_shows_which_node_runs_what():
    import io

    out = io.StringIO()
    p = Progress(2, mode="quiet", stream=out)
    p.problem_node("a", "10.0.0.2/1f2e3d")
    p.problem_node("b", "10.0.0.3/9a8b7c")
    assert p.snapshot()["nodes"] == {"10.0.0.2/1f2e3d": ["a"], "10.0.0.3/9a8b7c": ["b"]}
    assert "a on node 10.0.0.2/1f2e3d" in out.getvalue()
    p.problem_done("a", "done")
    assert p.snapshot()["nodes"] == {"10.0.0.3/9a8b7c": ["b"]}


def test_only_the_configured_endpoints_keys_go_to_the_workers(monkeypatch):
    from codemonkeys.distributed.cluster import worker_env

    env_key = "ANTHROPIC_API_KEY"
    monkeypatch.setenv(env_key, "sk-secret")
    monkeypatch.setenv("UNRELATED_TOKEN", "nope")
    cfg = Config.model_validate({"models": {"primary": {"model": "anthropic/claude-x"}}})
    assert worker_env(cfg) == {env_key: "sk-secret"}
    assert worker_env(Config()) == {}


def test_prompt_overrides_travel_with_the_job_to_a_node_without_them(tmp_path):
    """A node has no copy of the driver's prompts.dir: the job carries its templates, the
    node renders them from its scratch, and the fingerprints (template contents) agree."""
    from codemonkeys.distributed.worker import node_config, prompt_files
    from codemonkeys.prompts import prompts_dir

    own = tmp_path / "my-prompts" / "generation"
    own.mkdir(parents=True)
    edit_system = (prompts_dir() / "generation" / "edit_system.j2").read_text()
    (own / "edit_system.j2").write_text(edit_system + "\nAlways keep edits minimal.\n")
    config = Config.model_validate({"prompts": {"dir": str(tmp_path / "my-prompts")}})
    shipped, fingerprint = prompt_files(config), config.fingerprint("generation")
    assert shipped == {"generation/edit_system.j2": (own / "edit_system.j2").read_bytes()}
    shutil.rmtree(tmp_path / "my-prompts")  # what the node sees of the driver's disk

    on_node = node_config(config, shipped, tmp_path / "node-scratch")
    templates = on_node.prompt_templates()
    assert "Always keep edits minimal." in templates.path("generation/edit_system").read_text()
    assert on_node.fingerprint("generation") == fingerprint
    assert config.prompts.dir == tmp_path / "my-prompts"  # the driver's config unchanged
    assert node_config(Config(), prompt_files(Config()), tmp_path / "n2") == Config()


def test_an_address_nobody_answers_at_is_a_clear_error_at_once():
    """Ray itself retries a dead address for minutes; the driver refuses it first."""
    from codemonkeys.distributed.cluster import RayUnavailable, check_reachable

    with socket.socket() as s:  # a port that was free a moment ago: nobody listens
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    for address in (f"127.0.0.1:{port}", f"ray://127.0.0.1:{port}"):
        with pytest.raises(RayUnavailable, match=f"no Ray cluster answers at '{address}'"):
            check_reachable(address, timeout_s=2)
    with socket.socket() as listening:  # something answers: Ray is left to judge it
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        check_reachable(f"127.0.0.1:{listening.getsockname()[1]}")
    for address in ("auto", "local"):
        check_reachable(address)
