"""The cross-run relevance decision cache, through the real OpenAI SDK against the local
wire-format server: a second run in a new run directory (say, with a new generation config)
pays no relevance call."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from codemonkeys.config import Config, ContextConfig, EndpointConfig, ModelsConfig
from codemonkeys.context.decision_cache import DecisionCache
from codemonkeys.context.relevance import DECISIONS_FILE
from codemonkeys.context.stage import run_context
from codemonkeys.llm import ModelHub
from codemonkeys.llm.recording import CallLog, CostTracker
from codemonkeys.problem import Problem
from codemonkeys.sandbox.gittree import export_host_tree
from codemonkeys.store import RunStore
from tests.fakes.llm_server import OPENAI_PATH, LLMServer, Reply, openai_chat_completion
from tests.fixtures.context_repo import ISSUE, build_context_repo

PROBLEM = Problem(id="p1", repo="fixture/ctx", issue=ISSUE)


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> tuple[Path, list[str]]:
    root = tmp_path_factory.mktemp("ctx")
    sha = build_context_repo(root / "repo")
    return root / "export", export_host_tree(root / "repo", sha, root / "export")


def _answer(req) -> Reply:
    """Relevance prompts name their file; core.py is relevant. Rankings get a list."""
    text = json.dumps(req.json["messages"])
    m = re.search(r"File: (\S+?)(?:\\n| )", text)
    if m is None:
        return Reply(200, openai_chat_completion('```json\n["src/app/core.py"]\n```'))
    decision = "RELEVANT" if m.group(1) == "src/app/core.py" else "NOT RELEVANT"
    return Reply(200, openai_chat_completion(f"SUMMARY: {m.group(1)}\nDECISION: {decision}"))


def _config(server: LLMServer, cache_dir: Path, **ctx) -> Config:
    ep = EndpointConfig(model="openai/gpt-4o-mini", base_url=server.openai_url, max_retries=0)
    return Config(
        models=ModelsConfig(primary=ep),
        context=ContextConfig(
            max_file_bytes=50_000, rankings=1, relevance_cache_dir=cache_dir, **ctx
        ),
    )


def _run(config: Config, run_dir: Path, repo) -> tuple:
    store = RunStore(run_dir)
    hub = ModelHub(config.models, CallLog(store), CostTracker())
    return run_context(PROBLEM, repo[0], repo[1], hub, store, config), store


def _relevance_requests(server: LLMServer) -> int:
    return sum("File: " in json.dumps(r.json["messages"]) for r in server.requests(OPENAI_PATH))


def test_second_run_in_a_new_run_dir_answers_the_scan_from_the_cache(tmp_path, repo):
    with LLMServer() as server:
        server.set_default(OPENAI_PATH, _answer)
        cache_dir = tmp_path / "cache"
        first, _ = _run(_config(server, cache_dir), tmp_path / "run1", repo)
        asked = _relevance_requests(server)
        assert asked == 10 and first.relevance_from_cache == 0
        assert [f.path for f in first.relevant] == ["src/app/core.py"]

        # a new run (new directory, a different generation config): 0 relevance calls
        config = _config(server, cache_dir)
        config.generation.samples = 3
        second, store = _run(config, tmp_path / "run2", repo)
        assert _relevance_requests(server) == asked
        assert second.relevance_from_cache == 11  # 11 files, 10 distinct contents
        assert second.relevant == first.relevant and second.paths == first.paths
        # the run's own decisions file holds them too (a resume needs no cache)
        lines = store.read_jsonl(store.problem_dir("p1") / DECISIONS_FILE)
        assert len(lines) == 10 and all(line["from_cache"] for line in lines)

        # a different issue is a different key: asked again
        other = PROBLEM.model_copy(update={"issue": ISSUE + " Also for days."})
        store3 = RunStore(tmp_path / "run3")
        hub = ModelHub(config.models, CallLog(store3), CostTracker())
        run_context(other, repo[0], repo[1], hub, store3, config)
        assert _relevance_requests(server) == 2 * asked


def test_cache_off_asks_again(tmp_path, repo):
    with LLMServer() as server:
        server.set_default(OPENAI_PATH, _answer)
        _run(_config(server, tmp_path / "c", relevance_cache=False), tmp_path / "r1", repo)
        _run(_config(server, tmp_path / "c", relevance_cache=False), tmp_path / "r2", repo)
        assert _relevance_requests(server) == 20
        assert not (tmp_path / "c").exists()


def test_errors_are_never_cached_and_the_size_bound_evicts_the_least_recently_used(tmp_path):
    cache = DecisionCache(tmp_path, max_bytes=1000)
    cache.put("aa" + "0" * 30, {"status": "error", "error": "boom"})
    cache.put("ab" + "0" * 30, {"status": "parse_error"})
    assert cache.size_bytes() == 0
    keys = [f"{i:02d}" + "x" * 30 for i in range(12)]
    for k in keys:
        cache.put(k, {"status": "relevant", "summary": "s" * 100})
    assert cache.get(keys[0]).status == "relevant"  # touched: now the most recent
    over = cache.size_bytes()
    assert over > 1000
    assert cache.prune() > 0
    assert cache.size_bytes() <= 800
    assert cache.get(keys[0]) is not None  # recently read survives
    assert cache.get(keys[1]) is None  # least recently used went first


def _answer_all(word: str):
    """A server whose weights call every file ``word`` (RELEVANT / NOT RELEVANT)."""

    def answer(req) -> Reply:
        text = json.dumps(req.json["messages"])
        m = re.search(r"File: (\S+?)(?:\\n| )", text)
        if m is None:
            return Reply(200, openai_chat_completion('```json\n["src/app/core.py"]\n```'))
        return Reply(200, openai_chat_completion(f"SUMMARY: {m.group(1)}\nDECISION: {word}"))

    return answer


def test_two_servers_with_one_model_name_never_share_answers(tmp_path, repo):
    """Issue 26: two local servers serving different weights under one model name shared
    the cache; the second got 0 requests and its run took the first one's answers."""
    with LLMServer() as first, LLMServer() as second:
        first.set_default(OPENAI_PATH, _answer)
        second.set_default(OPENAI_PATH, _answer_all("RELEVANT"))
        cache_dir = tmp_path / "cache"
        one, _ = _run(_config(first, cache_dir), tmp_path / "run1", repo)
        two, _ = _run(_config(second, cache_dir), tmp_path / "run2", repo)
        assert _relevance_requests(second) == _relevance_requests(first) == 10
        assert len(one.relevant) == 1 and len(two.relevant) == 11
        assert two.relevance_from_cache == 0


@pytest.mark.parametrize(
    "change", [{"relevance_temperature": 0.7}, {"relevance_max_file_tokens": 50}]
)
def test_a_change_in_how_files_are_asked_is_not_answered_from_the_cache(tmp_path, repo, change):
    with LLMServer() as server:
        server.set_default(OPENAI_PATH, _answer)
        _run(_config(server, tmp_path / "cache"), tmp_path / "run1", repo)
        again, _ = _run(_config(server, tmp_path / "cache", **change), tmp_path / "run2", repo)
        assert _relevance_requests(server) == 20 and again.relevance_from_cache == 0


def _cache_entries(cache_dir: Path) -> list[Path]:
    return sorted(p for p in cache_dir.rglob("*.json") if not p.name.startswith(".tmp-"))


def test_a_type_wrong_cache_entry_is_a_miss_not_a_failed_problem(tmp_path, repo):
    """Issue 26: one cache entry with a summary that is not a string failed the whole
    problem with a ValidationError (and was copied into the run's decisions file)."""
    with LLMServer() as server:
        server.set_default(OPENAI_PATH, _answer)
        cache_dir = tmp_path / "cache"
        _run(_config(server, cache_dir), tmp_path / "run1", repo)
        # core.py's entry: its content is that of no other file (an entry two files share,
        # such as an empty __init__.py, is asked once and reused for the second)
        entry = next(
            p
            for p in _cache_entries(cache_dir)
            if "core.py" in json.loads(p.read_text())["summary"]
        )
        bad = json.loads(entry.read_text())
        entry.write_text(json.dumps({**bad, "summary": 123}))
        record, store = _run(_config(server, cache_dir), tmp_path / "run2", repo)
        assert _relevance_requests(server) == 11  # that one file was asked again
        assert record.missing == "" and record.relevance_from_cache == 10  # 11 files, 1 asked
        assert [f.path for f in record.relevant] == ["src/app/core.py"]
        lines = store.read_jsonl(store.problem_dir("p1") / DECISIONS_FILE)
        assert all(isinstance(line["summary"], str) for line in lines)
        assert json.loads(entry.read_text())["summary"] != 123  # overwritten


def test_a_bad_line_in_the_decisions_file_is_asked_again_and_recorded_as_such(tmp_path, repo):
    """Issue 26: the type-wrong entry copied into a run's decisions file failed the rerun
    even with context.relevance_cache=false."""
    with LLMServer() as server:
        server.set_default(OPENAI_PATH, _answer)
        config = _config(server, tmp_path / "cache", relevance_cache=False)
        _, store = _run(config, tmp_path / "run", repo)
        pdir = store.problem_dir("p1")
        path = pdir / DECISIONS_FILE
        lines = [json.loads(x) for x in path.read_text().splitlines()]
        lines[0]["summary"] = 123
        path.write_text("".join(json.dumps(x) + "\n" for x in lines) + "{not json\n")
        for name in ("relevance.json", "context.json"):
            (pdir / name).unlink()
        record, store = _run(config, tmp_path / "run", repo)  # (the call log answers it)
        assert [f.path for f in record.relevant] == ["src/app/core.py"]
        relevance = json.loads((pdir / "relevance.json").read_text())["data"]
        redone = [d for d in relevance["decisions"] if d["replaced_invalid"]]
        assert [d["sha256"] for d in redone] == [lines[0]["sha256"]]
        assert "summary" in redone[0]["replaced_invalid"]
        last = store.read_jsonl(path)[-1]
        assert last["key"] == lines[0]["key"] and last["replaced_invalid"]
