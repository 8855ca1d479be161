"""The real ``anthropic`` and ``openai`` SDKs against a local server speaking their wire
formats: request mapping, usage and cost, retries, failures, concurrency, key hygiene."""

from __future__ import annotations

import gzip
import logging
import threading
import time
from pathlib import Path

import pytest

from codemonkeys.config import EndpointConfig, ModelCapabilities, ModelsConfig
from codemonkeys.llm import ModelHub
from codemonkeys.llm.anthropic_model import AnthropicModel
from codemonkeys.llm.base import ContextLengthExceeded, Message, ModelError
from codemonkeys.llm.openai_model import OpenAIModel
from codemonkeys.llm.pricing import Pricing
from codemonkeys.llm.recording import CallLog, CostTracker
from codemonkeys.store import RunStore
from tests.fakes.llm_server import (
    ANTHROPIC_PATH,
    OPENAI_PATH,
    LLMServer,
    Reply,
    anthropic_error,
    anthropic_message,
    openai_chat_completion,
    openai_error,
)

ANTHROPIC_KEY = "sk-ant-test-7f3a9c1e5b2d4f6a8c0e"
OPENAI_KEY = "sk-test-openai-4b8d2f6a1c3e5g7i9k"

# the anthropic SDK warns about dated snapshots nearing end of life; irrelevant here
pytestmark = pytest.mark.filterwarnings("ignore:The model .* is deprecated:DeprecationWarning")


@pytest.fixture
def server():
    with LLMServer() as s:
        yield s


def endpoint(model: str, base_url: str, **kw) -> EndpointConfig:
    fields = dict(
        model=model,
        base_url=base_url,
        timeout_s=2.0,
        max_retries=3,
        backoff_initial_s=0.01,
        backoff_max_s=2.0,
    )
    fields.update(kw)
    return EndpointConfig(**fields)


def anthropic_model(
    server: LLMServer, name: str = "claude-sonnet-4-5", pricing: Pricing | None = None, **kw
):
    ep = endpoint(f"anthropic/{name}", server.url, **kw)
    return AnthropicModel(name, ep, pricing or Pricing(), api_key=ANTHROPIC_KEY)


def openai_model(server: LLMServer, name: str = "gpt-4o", pricing: Pricing | None = None, **kw):
    ep = endpoint(f"openai/{name}", server.openai_url, **kw)
    return OpenAIModel(name, ep, pricing or Pricing(), api_key=OPENAI_KEY)


# provider-parametrised tests: (path, model factory, success body, error body)
PROVIDERS = {
    "anthropic": (ANTHROPIC_PATH, anthropic_model, lambda t: anthropic_message(t), anthropic_error),
    "openai": (OPENAI_PATH, openai_model, lambda t: openai_chat_completion(t), openai_error),
}

USER = [Message(role="user", content="hello")]


def ask(model, messages=USER, **kw):
    kw.setdefault("temperature", 0.5)
    kw.setdefault("max_tokens", 100)
    return model.complete(messages, **kw)


# -- normal answers, usage, cost ---------------------------------------------------------


def test_anthropic_answer_usage_cost_and_request(server):
    server.enqueue(
        ANTHROPIC_PATH,
        Reply(
            200,
            anthropic_message(
                "the answer",
                thinking="let me think",
                input_tokens=1000,
                output_tokens=200,
                cache_creation_input_tokens=3000,
                cache_read_input_tokens=5000,
            ),
        ),
    )
    model = anthropic_model(server, "claude-sonnet-4-5-20250929")
    out = ask(model, temperature=0.7, max_tokens=321, stop=["</done>"])

    assert model.name == "anthropic/claude-sonnet-4-5-20250929"
    assert out.text == "the answer"  # thinking block skipped
    assert out.usage.model_dump() == {
        "input_tokens": 1000,
        "output_tokens": 200,
        "cache_write_tokens": 3000,
        "cache_read_tokens": 5000,
    }
    # Sonnet 4.5: $3 in, $15 out, $3.75 cache write, $0.30 cache read per million
    expected = (1000 * 3 + 200 * 15 + 3000 * 3.75 + 5000 * 0.3) / 1e6
    assert out.cost_usd == pytest.approx(expected)
    assert out.model == model.name

    (req,) = server.requests(ANTHROPIC_PATH)
    # this SDK version sends the key as a bearer token (older ones: x-api-key)
    assert ANTHROPIC_KEY in (req.headers.get("x-api-key"), req.headers.get("authorization", "")[7:])
    body = req.json
    assert body["model"] == "claude-sonnet-4-5-20250929"
    assert body["max_tokens"] == 321
    assert body["temperature"] == 0.7
    assert body["stop_sequences"] == ["</done>"]
    assert body["messages"] == [{"role": "user", "content": [{"type": "text", "text": "hello"}]}]
    assert "system" not in body and "thinking" not in body


def test_anthropic_cache_control_only_on_marked_messages(server):
    messages = [
        Message(role="system", content="you fix bugs", cache=True),
        Message(role="user", content="<context>big shared prefix</context>", cache=True),
        Message(role="assistant", content="first answer"),
        Message(role="user", content="feedback"),
    ]
    ask(anthropic_model(server), messages)
    body = server.requests(ANTHROPIC_PATH)[0].json
    ephemeral = {"type": "ephemeral"}
    assert body["system"] == [{"type": "text", "text": "you fix bugs", "cache_control": ephemeral}]
    turns = body["messages"]
    assert [t["role"] for t in turns] == ["user", "assistant", "user"]
    assert turns[0]["content"] == [
        {"type": "text", "text": "<context>big shared prefix</context>", "cache_control": ephemeral}
    ]
    assert all("cache_control" not in block for t in turns[1:] for block in t["content"])


def test_anthropic_at_most_four_cache_breakpoints(server):
    messages = [Message(role="system", content="s", cache=True)]
    for i in range(5):
        messages.append(Message(role="user", content=f"u{i}", cache=True))
        messages.append(Message(role="assistant", content=f"a{i}"))
    messages.append(Message(role="user", content="last", cache=True))
    ask(anthropic_model(server), messages)
    body = server.requests(ANTHROPIC_PATH)[0].json
    blocks = body["system"] + [b for t in body["messages"] for b in t["content"]]
    marked = [b["text"] for b in blocks if "cache_control" in b]
    assert marked == ["s", "u0", "u4", "last"]  # the shared prefix and the latest turns


def test_anthropic_clamps_max_tokens_to_the_model_limit(server):
    ask(anthropic_model(server, "claude-3-5-haiku-20241022"), max_tokens=50_000)
    assert server.requests(ANTHROPIC_PATH)[0].json["max_tokens"] == 8192


def test_anthropic_extended_thinking_drops_temperature_and_warns_once(server, caplog):
    caps = ModelCapabilities(thinking_budget=2000, max_output_tokens=64_000)
    pricing = Pricing(ModelsConfig(capabilities={"claude-sonnet-4-5": caps}))
    model = anthropic_model(server, pricing=pricing)
    with caplog.at_level(logging.WARNING):
        ask(model, temperature=0.3, max_tokens=1000)
        ask(model, temperature=0.8, max_tokens=1000)
    for req in server.requests(ANTHROPIC_PATH):
        assert req.json["thinking"] == {"type": "enabled", "budget_tokens": 2000}
        assert req.json["max_tokens"] == 3000  # answer + thinking budget
        assert "temperature" not in req.json
    warnings = [r for r in caplog.records if "repeated sampling" in r.getMessage()]
    assert len(warnings) == 1 and "anthropic/claude-sonnet-4-5" in warnings[0].getMessage()


def test_openai_answer_usage_cost_and_request(server):
    server.enqueue(
        OPENAI_PATH,
        Reply(
            200,
            openai_chat_completion(
                "patched", prompt_tokens=1000, completion_tokens=50, cached_tokens=400
            ),
        ),
    )
    model = openai_model(server, "gpt-4o-2024-08-06")
    messages = [
        Message(role="system", content="sys", cache=True),
        Message(role="user", content="q"),
        Message(role="assistant", content="a"),
        Message(role="user", content="q2"),
    ]
    out = ask(model, messages, temperature=0.2, max_tokens=77, stop=["STOP"])

    assert model.name == "openai/gpt-4o-2024-08-06"
    assert out.text == "patched"
    assert out.usage.model_dump() == {
        "input_tokens": 600,
        "output_tokens": 50,
        "cache_read_tokens": 400,
        "cache_write_tokens": 0,
    }
    # gpt-4o: $2.50 in, $10 out, $1.25 cached input per million
    assert out.cost_usd == pytest.approx((600 * 2.5 + 50 * 10 + 400 * 1.25) / 1e6)

    (req,) = server.requests(OPENAI_PATH)
    assert req.headers["authorization"] == f"Bearer {OPENAI_KEY}"
    assert req.json == {
        "model": "gpt-4o-2024-08-06",
        "messages": [
            {"role": "system", "content": "sys"},
            {"role": "user", "content": "q"},
            {"role": "assistant", "content": "a"},
            {"role": "user", "content": "q2"},
        ],
        "max_tokens": 77,
        "temperature": 0.2,
        "stop": ["STOP"],
    }


def test_openai_compatible_server_without_usage(server, caplog):
    """A local server (vLLM, llama.cpp...) may omit usage: 0 tokens, said in a debug log."""
    server.enqueue(OPENAI_PATH, Reply(200, openai_chat_completion("local", include_usage=False)))
    model = openai_model(server, "qwen2.5-coder-32b")
    with caplog.at_level(logging.DEBUG, logger="codemonkeys"):
        out = ask(model)
    assert out.text == "local"
    assert out.usage.model_dump() == dict.fromkeys(
        ["input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens"], 0
    )
    assert out.cost_usd == 0.0
    assert any("no token usage" in r.getMessage() for r in caplog.records)


def test_openai_reasoning_model_gets_max_completion_tokens_and_no_temperature(server, caplog):
    model = openai_model(server, "o3")
    with caplog.at_level(logging.WARNING):
        ask(model, temperature=0.5, max_tokens=500)
        ask(model, temperature=0.0, max_tokens=500)
    for req in server.requests(OPENAI_PATH):
        assert req.json["max_completion_tokens"] == 500
        assert "max_tokens" not in req.json
        assert "temperature" not in req.json
    warnings = [r for r in caplog.records if "repeated sampling" in r.getMessage()]
    assert len(warnings) == 1 and "openai/o3" in warnings[0].getMessage()


def test_openai_reasoning_effort_from_config(server):
    caps = ModelCapabilities(
        temperature=False, max_tokens_param="max_completion_tokens", reasoning_effort="high"
    )
    pricing = Pricing(ModelsConfig(capabilities={"gpt-5": caps}))
    ask(openai_model(server, "gpt-5", pricing=pricing))
    body = server.requests(OPENAI_PATH)[0].json
    assert body["reasoning_effort"] == "high"
    assert "temperature" not in body and body["max_completion_tokens"] == 100


# -- retries ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "provider, header, wait_s",
    [("anthropic", {"retry-after": "1"}, 1.0), ("openai", {"retry-after-ms": "700"}, 0.7)],
)
def test_429_honours_retry_after_then_succeeds(server, provider, header, wait_s):
    path, make, ok, err = PROVIDERS[provider]
    server.enqueue(
        path, Reply(429, err(429, "slow down"), headers=header), Reply(200, ok("after wait"))
    )
    out = ask(make(server))
    assert out.text == "after wait"
    first, second = server.requests(path)
    assert second.received_at - first.received_at >= wait_s
    assert second.json == first.json  # the same request, repeated


def test_retry_after_is_capped_by_backoff_max(server):
    path, make, ok, err = PROVIDERS["openai"]
    server.enqueue(path, Reply(429, err(429), headers={"retry-after": "30"}), Reply(200, ok("x")))
    start = time.monotonic()
    assert ask(make(server, backoff_max_s=0.2)).text == "x"
    assert time.monotonic() - start < 5


@pytest.mark.parametrize("provider", ["anthropic", "openai"])
def test_500_and_529_then_success(server, provider):
    path, make, ok, err = PROVIDERS[provider]
    server.enqueue(
        path,
        Reply(500, err(500, "boom")),
        Reply(529, err(529, "overloaded")),
        Reply(200, ok("fine")),
    )
    assert ask(make(server)).text == "fine"
    assert len(server.requests(path)) == 3


@pytest.mark.parametrize("provider", ["anthropic", "openai"])
def test_hanging_response_times_out_and_is_retried(server, provider):
    path, make, ok, _ = PROVIDERS[provider]
    server.enqueue(path, Reply(200, ok("too late"), delay_s=10), Reply(200, ok("on time")))
    start = time.monotonic()
    out = ask(make(server, timeout_s=0.3))
    assert out.text == "on time"
    assert len(server.requests(path)) == 2
    assert 0.3 <= time.monotonic() - start < 5


@pytest.mark.parametrize("provider", ["anthropic", "openai"])
def test_malformed_json_is_retried_then_fails_clearly(server, provider):
    path, make, ok, _ = PROVIDERS[provider]
    server.enqueue(
        path,
        Reply(200, '{"id": "msg_1", "content": [tru'),  # cut off
        Reply(200, {"unexpected": "shape"}),  # valid JSON, not a message
        Reply(200, ok("recovered")),
    )
    assert ask(make(server)).text == "recovered"
    assert len(server.requests(path)) == 3

    server.reset()
    server.set_default(path, Reply(200, "<html>proxy error</html>"))
    with pytest.raises(ModelError) as info:
        ask(make(server, max_retries=2))
    assert "malformed response" in str(info.value)
    assert "gave up after 3 attempts" in str(info.value)
    assert info.value.retryable
    assert len(server.requests(path)) == 3


@pytest.mark.parametrize("provider", ["anthropic", "openai"])
def test_exhausted_retries_raise_retryable_model_error_naming_the_last_error(server, provider):
    path, make, _, err = PROVIDERS[provider]
    server.set_default(path, Reply(503, err(503, "maintenance")))
    with pytest.raises(ModelError) as info:
        ask(make(server, max_retries=2))
    assert info.value.retryable
    assert "HTTP 503" in str(info.value) and "maintenance" in str(info.value)
    assert len(server.requests(path)) == 3


@pytest.mark.parametrize(
    "provider, key, env",
    [("anthropic", ANTHROPIC_KEY, "ANTHROPIC_API_KEY"), ("openai", OPENAI_KEY, "OPENAI_API_KEY")],
)
def test_401_fails_at_once_with_a_clear_message_without_the_key(server, provider, key, env):
    path, make, _, err = PROVIDERS[provider]
    server.set_default(path, Reply(401, err(401, f"invalid api key: {key}")))
    model = make(server)
    with pytest.raises(ModelError) as info:
        ask(model)
    message = str(info.value)
    assert f"authentication failed for {model.name}: check {env}" in message
    assert key not in message and key[-8:] not in message
    assert not info.value.retryable
    assert len(server.requests(path)) == 1


@pytest.mark.parametrize("status", [400, 403, 404, 422])
def test_client_errors_are_never_retried(server, status):
    path, make, _, err = PROVIDERS["anthropic"]
    server.set_default(path, Reply(status, err(status, "nope")))
    with pytest.raises(ModelError) as info:
        ask(make(server))
    assert f"HTTP {status}" in str(info.value) and "nope" in str(info.value)
    assert len(server.requests(path)) == 1


@pytest.mark.parametrize(
    ("provider", "message"),
    [
        ("anthropic", "prompt is too long: 210345 tokens > 200000 maximum"),
        ("openai", "This model's maximum context length is 128000 tokens. However, your "
                   "messages resulted in 131072 tokens."),
    ],
)  # fmt: skip
def test_a_context_length_answer_is_its_own_final_error(server, provider, message):
    path, make, _, err = PROVIDERS[provider]
    server.set_default(path, Reply(400, err(400, message)))
    with pytest.raises(ContextLengthExceeded) as info:
        ask(make(server))
    assert "context window" in str(info.value) and "HTTP 400" in str(info.value)
    assert not info.value.retryable
    assert len(server.requests(path)) == 1  # never retried


# -- through the hub: concurrency limit and the call log ---------------------------------


def test_endpoint_concurrency_limit_holds_at_the_server(server, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    server.set_default(OPENAI_PATH, Reply(200, openai_chat_completion("slow"), delay_s=0.25))
    config = ModelsConfig(primary=endpoint("openai/gpt-4o", server.openai_url, max_concurrency=2))
    hub = ModelHub(config, CallLog(RunStore(tmp_path / "run")), CostTracker())
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            model = hub.model("primary", problem_id=f"p{i % 3}", stage="edits")
            ask(model, [Message(role="user", content=f"task {i}")])
        except BaseException as e:  # surfaced below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors
    assert len(server.requests(OPENAI_PATH)) == 6
    assert server.peak_in_flight == 2  # the limit was reached and never exceeded
    assert max(limit.peak for limit in hub.limits.values()) == 2


def _all_text(root: Path) -> str:
    parts = []
    for f in root.rglob("*"):
        if f.is_file():
            data = f.read_bytes()
            if f.suffix == ".gz":
                data = gzip.decompress(data)
            parts.append(data.decode("utf-8", errors="replace"))
    return "\n".join(parts)


@pytest.mark.parametrize(
    "provider, key, env",
    [("anthropic", ANTHROPIC_KEY, "ANTHROPIC_API_KEY"), ("openai", OPENAI_KEY, "OPENAI_API_KEY")],
)
def test_keys_never_reach_the_call_log_prompts_or_logs(
    server, tmp_path, monkeypatch, caplog, provider, key, env
):
    path, _, ok, err = PROVIDERS[provider]
    monkeypatch.setenv(env, key)
    base = server.url if provider == "anthropic" else server.openai_url
    name = "claude-sonnet-4-5" if provider == "anthropic" else "gpt-4o"
    config = ModelsConfig(primary=endpoint(f"{provider}/{name}", base))
    store = RunStore(tmp_path / "run")
    calls = CallLog(store)
    costs = CostTracker()
    hub = ModelHub(config, calls, costs)
    server.enqueue(
        path,
        Reply(429, err(429, f"rate limited for key {key}"), headers={"retry-after-ms": "10"}),
        Reply(200, ok("answer")),
        Reply(401, err(401, f"revoked: {key}")),
    )
    model = hub.model("primary", problem_id="django__django-1", stage="edits")
    messages = [
        Message(role="system", content="sys", cache=True),
        Message(role="user", content="fix it"),
    ]
    with caplog.at_level(logging.DEBUG):
        out = ask(model, messages)
        with pytest.raises(ModelError) as info:
            ask(model, [Message(role="user", content="again")])

    assert out.text == "answer"
    # the server did get the key (so the test would see a leak if it was copied around)
    assert any(key in str(r.headers) for r in server.requests(path))
    (record,) = calls.records()
    assert record["model"] == f"{provider}/{name}" and record["text"] == "answer"
    assert record["cost_usd"] == pytest.approx(out.cost_usd) and out.cost_usd > 0
    assert costs.total == pytest.approx(out.cost_usd)
    assert key not in _all_text(store.root)
    assert key not in str(info.value)
    assert key not in caplog.text
    assert all(key not in str(r.args) for r in caplog.records)
    assert key not in repr(hub.provider("primary"))


def test_stop_flag_cuts_a_retry_backoff_short(server, tmp_path, monkeypatch):
    """Ctrl-C/SIGTERM during an outage: the backoff wait (here 60 s) ends as soon as the
    run's stop flag is set, with Interrupted (not a ModelError recorded as an answer)."""
    from codemonkeys.errors import Interrupted

    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    server.set_default(OPENAI_PATH, Reply(503, openai_error(503, "down")))
    ep = endpoint("openai/gpt-4o", server.openai_url, backoff_initial_s=60, backoff_max_s=120)
    stop = threading.Event()
    hub = ModelHub(
        ModelsConfig(primary=ep), CallLog(RunStore(tmp_path / "run")), CostTracker(stop=stop)
    )
    model = hub.model("primary", problem_id="p", stage="edits")

    waiting = threading.Event()

    class RetryWatcher(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "retry 1/" in record.getMessage():
                waiting.set()

    watcher = RetryWatcher()
    logging.getLogger("codemonkeys.llm.retry").addHandler(watcher)
    outcome: list[BaseException] = []

    def call() -> None:
        try:
            ask(model)
        except BaseException as e:
            outcome.append(e)

    worker = threading.Thread(target=call)
    worker.start()
    try:
        assert waiting.wait(30), "the first attempt never failed"
        stop.set()
        worker.join(10)  # the backoff is 30-60 s: only the stop flag ends it this soon
        assert not worker.is_alive(), "the backoff wait ignored the stop flag"
    finally:
        logging.getLogger("codemonkeys.llm.retry").removeHandler(watcher)
        stop.set()
        worker.join(120)
    assert len(outcome) == 1 and isinstance(outcome[0], Interrupted), outcome
    assert len(server.requests(OPENAI_PATH)) == 1
    assert CallLog(RunStore(tmp_path / "run")).records() == []


# -- answers cut at the output token limit -------------------------------------------------

CUT_BODIES = {
    "anthropic": (
        lambda text, stop: anthropic_message(text, stop_reason=stop),
        ("max_tokens", "end_turn"),
    ),
    "openai": (
        lambda text, stop: openai_chat_completion(text, finish_reason=stop),
        ("length", "stop"),
    ),
}


@pytest.mark.parametrize("provider", ["anthropic", "openai"])
def test_an_answer_cut_at_the_token_limit_is_known_as_cut_logged_and_replayed_so(
    server, tmp_path, provider
):
    """Anthropic ``stop_reason`` "max_tokens", OpenAI ``finish_reason`` "length": the
    answer is a beginning (``Completion.cut``), the call log says so, and an answer from the
    log (a resumed run) is still cut."""
    path, factory, _, _ = PROVIDERS[provider]
    body, (cut_reason, whole_reason) = CUT_BODIES[provider]
    server.enqueue(path, Reply(200, body("DECISION: RELEVANT and then", cut_reason)))
    server.enqueue(path, Reply(200, body("DECISION: RELEVANT", whole_reason)))
    from codemonkeys.llm.recording import EndpointLimit, RecordingModel

    calls = CallLog(RunStore(tmp_path / "run"))
    model = RecordingModel(
        factory(server),
        calls=calls,
        costs=CostTracker(),
        limit=EndpointLimit(1),
        problem_id="p",
        stage="relevance",
    )
    cut = ask(model, key="first")
    whole = ask(model, key="second")
    assert (cut.cut, whole.cut) == (True, False)
    assert [c["cut"] for c in calls.records()] == [True, False]
    again = ask(model, key="first")  # from the call log: not sent, still cut
    assert again.cached and again.cut and len(server.requests(path)) == 2
