"""The relevance scan through the batch APIs, with the real ``anthropic`` and ``openai``
SDKs against the local server's batch endpoints (tests/fakes/batch_api.py)."""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path

import pytest

from codemonkeys.config import Config, ContextConfig, EndpointConfig, ModelsConfig
from codemonkeys.context.relevance import DECISIONS_FILE
from codemonkeys.context.relevance_batch import BATCHES_FILE, run_relevance_batches
from codemonkeys.context.stage import run_context
from codemonkeys.llm import ModelHub
from codemonkeys.llm.batch import batch_api
from codemonkeys.llm.recording import CallLog, CostTracker
from codemonkeys.problem import Problem
from codemonkeys.sandbox.gittree import export_host_tree
from codemonkeys.store import RunStore
from tests.fakes.batch_api import ERRORED, EXPIRED, FakeBatches
from tests.fakes.llm_server import (
    ANTHROPIC_PATH,
    OPENAI_PATH,
    LLMServer,
    Reply,
    anthropic_message,
    openai_chat_completion,
)
from tests.fixtures.context_repo import ISSUE, build_context_repo

pytestmark = pytest.mark.filterwarnings("ignore:The model .* is deprecated:DeprecationWarning")

PROBLEM = Problem(id="p1", repo="fixture/ctx", issue=ISSUE)
OUTCOMES = {"src/app/util.py": ERRORED, "web/main.js": EXPIRED, "cmd/tool.go": "no idea"}


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> tuple[Path, list[str]]:
    root = tmp_path_factory.mktemp("ctx")
    sha = build_context_repo(root / "repo")
    return root / "export", export_host_tree(root / "repo", sha, root / "export")


def _path_of(body: dict) -> str | None:
    m = re.search(r"File: (\S+?)(?:\\n| )", json.dumps(body))
    return m.group(1) if m else None


def _decide(path: str) -> str:
    verdict = "RELEVANT" if path == "src/app/core.py" else "NOT RELEVANT"
    return f"SUMMARY: {path}\nDECISION: {verdict}"


def _batch_answer(custom_id: str, body: dict) -> str:
    path = _path_of(body)
    return OUTCOMES.get(path) or _decide(path)


def _interactive(provider: str):
    def reply(req) -> Reply:
        path = _path_of(req.json)
        text = _decide(path) if path else '```json\n["src/app/core.py"]\n```'
        body = anthropic_message(text) if provider == "anthropic" else openai_chat_completion(text)
        return Reply(200, body)

    return reply


PROVIDERS = {
    "anthropic": ("anthropic/claude-sonnet-4-5", ANTHROPIC_PATH, "/v1/messages/batches"),
    "openai": ("openai/gpt-4o-mini", OPENAI_PATH, "/v1/batches"),
}


def _setup(server, provider, tmp_path, monkeypatch):
    model, path, _ = PROVIDERS[provider]
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    server.set_default(path, _interactive(provider))
    base = server.url if provider == "anthropic" else server.openai_url
    config = Config(
        models=ModelsConfig(primary=EndpointConfig(model=model, base_url=base, max_retries=0)),
        context=ContextConfig(
            max_file_bytes=50_000, rankings=1, relevance_batch=True, relevance_batch_poll_s=0.01
        ),
    )
    store = RunStore(tmp_path / "run")
    costs = CostTracker()
    return config, store, ModelHub(config.models, CallLog(store), costs), costs


@pytest.mark.parametrize("provider", PROVIDERS)
def test_batch_answers_feed_the_decisions_and_the_rest_is_asked_interactively(
    provider, tmp_path, repo, monkeypatch
):
    with LLMServer() as server:
        batches = FakeBatches(server, _batch_answer, polls=2)
        config, store, hub, costs = _setup(server, provider, tmp_path, monkeypatch)
        rec = run_context(PROBLEM, repo[0], repo[1], hub, store, config)

        created = server.requests(PROVIDERS[provider][2])
        assert len(created) == 1  # one batch for the 10 distinct files
        interactive = [_path_of(r.json) for r in server.requests(PROVIDERS[provider][1])]
        # the errored, the expired and the undecided item are asked again, nothing else
        assert sorted(p for p in interactive if p) == sorted(OUTCOMES)
    assert [f.path for f in rec.relevant] == ["src/app/core.py"]
    assert rec.relevance_counts == {"not_relevant": 10, "relevant": 1}
    lines = store.read_jsonl(store.problem_dir("p1") / DECISIONS_FILE)
    from_batch = [x for x in lines if x.get("batch_id")]
    assert len(from_batch) == 7 and {x["path"] for x in from_batch}.isdisjoint(OUTCOMES)
    jobs = store.read_jsonl(store.problem_dir("p1") / BATCHES_FILE)
    assert [j["state"] for j in jobs] == ["submitted", "collected"]
    assert jobs[1]["counts"] == {"decided": 7, "errored": 1, "expired": 1, "no_decision": 1}
    # batch usage at half the list price: 8 answers x (1000 in, 100 out)
    price = hub.pricing.price(config.models.primary.model)
    batch_usd = 8 * (1000 * price.input + 100 * price.output) / 1e6 / 2
    assert sum(x["cost_usd"] for x in from_batch) == pytest.approx(7 / 8 * batch_usd)
    assert costs.total >= batch_usd - 1e-9
    if provider == "anthropic":
        (batch,) = batches.anthropic.values()
        params = batch["requests"][0]["params"]
        assert params["model"] == "claude-sonnet-4-5" and params["temperature"] == 0.0
        assert params["system"][0]["cache_control"] == {"type": "ephemeral"}
    else:
        (upload,) = server.requests("/v1/files")
        assert b'name="purpose"' in upload.raw and b'"custom_id": ' in upload.raw
        (created_req,) = created
        assert created_req.json["endpoint"] == "/v1/chat/completions"
        assert created_req.json["completion_window"] == "24h"


def test_a_second_run_sends_no_batch_when_the_decision_cache_answers(tmp_path, repo, monkeypatch):
    with LLMServer() as server:
        FakeBatches(server, _batch_answer, polls=1)
        config, store, hub, _ = _setup(server, "anthropic", tmp_path, monkeypatch)
        first = run_context(PROBLEM, repo[0], repo[1], hub, store, config)
        n_requests = len(server.requests())
        store2 = RunStore(tmp_path / "run2")  # a new run (e.g. a new generation config)
        hub2 = ModelHub(config.models, CallLog(store2), CostTracker())
        second = run_context(PROBLEM, repo[0], repo[1], hub2, store2, config)
        new = server.requests()[n_requests:]
        assert [r.path for r in new] == [ANTHROPIC_PATH]  # the ranking call only
        assert _path_of(new[0].json) is None
    assert second.relevance_from_cache == 11 and second.relevant == first.relevant


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_killed_run_picks_up_its_batch_instead_of_paying_again(
    provider, tmp_path, repo, monkeypatch
):
    with LLMServer() as server:
        FakeBatches(server, lambda cid, body: _decide(_path_of(body)), polls=1)
        config, store, hub, _ = _setup(server, provider, tmp_path, monkeypatch)
        api = batch_api(hub.provider("relevance"))
        from codemonkeys.context.files import enumerate_files

        files = enumerate_files(repo[0], repo[1], config.context).files
        killed = threading.Event()
        killed.set()  # the run is stopped right after submitting, before any answer
        kwargs = dict(
            problem_id="p1", issue=ISSUE, repo_dir=repo[0], files=files,
            model_name=hub.model("relevance", problem_id="p1", stage="relevance").name,
            api=api, store=store, cfg=config.context,
            templates=config.prompt_templates(), pricing=hub.pricing,
            add_cost=lambda usd: None,
        )  # fmt: skip
        assert run_relevance_batches(**kwargs, stop=killed) == {}
        assert len(server.requests(PROVIDERS[provider][2])) == 1
        # the rerun: polls the recorded batch, submits nothing new
        counts = run_relevance_batches(**kwargs)
        assert counts == {"decided": 10}
        assert len(server.requests(PROVIDERS[provider][2])) == 1
        # and a third run has nothing left to send
        assert run_relevance_batches(**kwargs) == {}
        assert len(server.requests(PROVIDERS[provider][2])) == 1


@pytest.mark.parametrize("provider", PROVIDERS)
def test_cancel_ends_the_batch_with_no_answers(provider, tmp_path, monkeypatch):
    from codemonkeys.llm.base import Message
    from codemonkeys.llm.batch import BatchRequest

    with LLMServer() as server:
        FakeBatches(server, lambda cid, body: "DECISION: RELEVANT", polls=100)
        config, store, hub, _ = _setup(server, provider, tmp_path, monkeypatch)
        api = batch_api(hub.provider("relevance"))
        msgs = [Message(role="user", content="File: a.py\n")]
        bid = api.submit([BatchRequest(custom_id="k1", messages=msgs, temperature=0, max_tokens=9)])
        assert not api.ended(bid)
        api.cancel(bid)
        assert api.ended(bid)
        items = api.results(bid)
        assert all(i.status != "succeeded" for i in items)
