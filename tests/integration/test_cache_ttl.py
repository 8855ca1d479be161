"""Anthropic's 1-hour prompt-cache TTL (``models.primary.cache_ttl = "1h"``), through the
real SDK against the local wire-format server: the request body and the price."""

from __future__ import annotations

import pytest

from codemonkeys.config import EndpointConfig, ModelsConfig
from codemonkeys.llm.anthropic_model import AnthropicModel
from codemonkeys.llm.base import Message
from codemonkeys.llm.pricing import Pricing
from tests.fakes.llm_server import ANTHROPIC_PATH, LLMServer, Reply, anthropic_message

pytestmark = pytest.mark.filterwarnings("ignore:The model .* is deprecated:DeprecationWarning")

MESSAGES = [
    Message(role="system", content="you fix bugs", cache=True),
    Message(role="user", content="<context>shared prefix</context>", cache=True),
    Message(role="user", content="write the test"),
]


def _ask(server: LLMServer, ttl: str) -> tuple[dict, float]:
    server.enqueue(
        ANTHROPIC_PATH, Reply(200, anthropic_message("ok", cache_creation_input_tokens=1_000_000))
    )
    ep = EndpointConfig(
        model="anthropic/claude-sonnet-4-5", base_url=server.url, cache_ttl=ttl, max_retries=0
    )
    model = AnthropicModel("claude-sonnet-4-5", ep, Pricing(), api_key="sk-ant-test")
    out = model.complete(MESSAGES, temperature=0.0, max_tokens=10)
    return server.requests(ANTHROPIC_PATH)[-1].json, out.cost_usd


def test_one_hour_ttl_is_sent_on_every_cache_mark_and_priced_at_twice_input():
    with LLMServer() as server:
        body, cost_1h = _ask(server, "1h")
        one_hour = {"type": "ephemeral", "ttl": "1h"}
        assert body["system"][0]["cache_control"] == one_hour
        assert body["messages"][0]["content"][0]["cache_control"] == one_hour
        assert "cache_control" not in body["messages"][1]["content"][0]
        body_5m, cost_5m = _ask(server, "5m")
        assert body_5m["system"][0]["cache_control"] == {"type": "ephemeral"}
    # Sonnet 4.5: input $3/M; a million cache-write tokens: 1h $6 (2x), 5m $3.75 (1.25x)
    out_tokens = 5 * 15 / 1e6 + 10 * 3 / 1e6
    assert cost_1h == pytest.approx(6.0 + out_tokens)
    assert cost_5m == pytest.approx(3.75 + out_tokens)


def test_the_default_small_relevance_model_keeps_the_five_minute_ttl():
    models = ModelsConfig(
        primary=EndpointConfig(model="anthropic/claude-sonnet-4-5", cache_ttl="1h")
    )
    assert models.relevance_endpoint().cache_ttl == "5m"
    assert models.primary.cache_ttl == "1h"
