"""Price and capability lookups: dated snapshots, unknown models, config overrides; and the
retry helpers' arithmetic (Retry-After parsing, backoff bounds, key redaction)."""

from __future__ import annotations

import logging
import time
from email.utils import formatdate

import pytest

from codemonkeys.config import EndpointConfig, ModelCapabilities, ModelsConfig, Price
from codemonkeys.llm.base import ModelError, Usage
from codemonkeys.llm.pricing import Pricing
from codemonkeys.llm.retry import (
    TransientError,
    backoff_seconds,
    call_with_retries,
    parse_retry_after,
    redact,
    status_error_outcome,
)

MILLION = Usage(input_tokens=1_000_000)


@pytest.mark.parametrize(
    "model, input_price",
    [
        ("anthropic/claude-sonnet-4-5-20250929", 3.0),
        ("anthropic/claude-sonnet-4-20250514", 3.0),
        ("anthropic/claude-opus-4-20250514", 15.0),
        ("anthropic/claude-opus-4-1-20250805", 15.0),
        ("anthropic/claude-opus-4-5-20251101", 5.0),
        ("anthropic/claude-haiku-4-5-20251001", 1.0),
        ("anthropic/claude-3-5-haiku-latest", 0.8),
        ("openai/gpt-4o-2024-08-06", 2.5),
        ("openai/gpt-4o-mini-2024-07-18", 0.15),  # longest prefix wins over gpt-4o
        ("openai/gpt-4.1-mini-2025-04-14", 0.4),
        ("openai/o3-2025-04-16", 2.0),
        ("openai/o3-mini-2025-01-31", 1.1),
        ("openai/gpt-5-mini-2025-08-07", 0.25),
    ],
)
def test_dated_snapshots_find_their_family_price(model, input_price):
    assert Pricing().cost(model, MILLION) == pytest.approx(input_price)


def test_prefix_must_end_at_a_separator():
    # "o1" must not price "o1x-custom", nor "gpt-5" price "gpt-50"
    pricing = Pricing()
    assert pricing.price("openai/o1x-custom") is None
    assert pricing.price("openai/gpt-50") is None


def test_cost_counts_every_token_kind():
    usage = Usage(
        input_tokens=2000, output_tokens=1000, cache_write_tokens=4000, cache_read_tokens=10_000
    )
    cost = Pricing().cost("anthropic/claude-sonnet-4-5", usage)
    assert cost == pytest.approx((2000 * 3 + 1000 * 15 + 4000 * 3.75 + 10_000 * 0.3) / 1e6)


def test_unknown_model_costs_zero_with_one_warning(caplog):
    pricing = Pricing()
    with caplog.at_level(logging.WARNING, logger="codemonkeys.llm.pricing"):
        for _ in range(3):
            assert (
                pricing.cost(
                    "openai/my-local-llama", Usage(input_tokens=10**6, output_tokens=10**6)
                )
                == 0.0
            )
    warnings = [r for r in caplog.records if "my-local-llama" in r.getMessage()]
    assert len(warnings) == 1
    assert "[models.prices.my-local-llama]" in warnings[0].getMessage()


def test_config_overrides_and_extends_the_table():
    config = ModelsConfig(
        prices={
            "gpt-4o": Price(input=1.0, output=2.0),  # override (no cache prices: input price)
            "my-local-llama": Price(input=0.1, output=0.2, cache_read=0.01),
        }
    )
    pricing = Pricing(config)
    usage = Usage(
        input_tokens=10**6, output_tokens=10**6, cache_read_tokens=10**6, cache_write_tokens=10**6
    )
    assert pricing.cost("openai/gpt-4o-2024-08-06", usage) == pytest.approx(1 + 2 + 1 + 1)
    assert pricing.cost("openai/my-local-llama", usage) == pytest.approx(0.1 + 0.2 + 0.01 + 0.1)
    # the rest of the table is untouched
    assert pricing.cost("anthropic/claude-haiku-4-5", MILLION) == pytest.approx(1.0)


def test_scripted_models_are_free_unless_configured():
    usage = Usage(input_tokens=10**6, output_tokens=10**6)
    assert Pricing().cost("scripted", usage) == 0.0
    priced = Pricing(ModelsConfig(prices={"scripted": Price(input=1, output=1)}))
    assert priced.cost("scripted", usage) == pytest.approx(2.0)


def test_capabilities_of_reasoning_models_and_overrides():
    pricing = Pricing()
    for model in ["openai/o3-2025-04-16", "openai/o4-mini", "openai/gpt-5.1", "openai/gpt-5-mini"]:
        caps = pricing.capabilities(model)
        assert caps.temperature is False, model
        assert caps.max_tokens_param == "max_completion_tokens", model
    assert pricing.capabilities("openai/o4-mini").max_output_tokens == 100_000
    chat = pricing.capabilities("openai/gpt-4o-2024-08-06")
    assert chat.temperature and chat.max_tokens_param == "max_tokens"
    assert pricing.capabilities("openai/some-local-model") == ModelCapabilities()
    assert pricing.capabilities("anthropic/claude-3-5-haiku-latest").max_output_tokens == 8192

    thinking = ModelCapabilities(thinking_budget=4000)
    overridden = Pricing(ModelsConfig(capabilities={"claude-sonnet-4-5": thinking}))
    assert overridden.capabilities("anthropic/claude-sonnet-4-5-20250929").thinking_budget == 4000
    assert overridden.capabilities("anthropic/claude-sonnet-4-20250514").thinking_budget is None


# -- retry helpers ------------------------------------------------------------------------


def test_parse_retry_after_forms():
    assert parse_retry_after({"retry-after": "3"}) == 3.0
    assert parse_retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    later = parse_retry_after({"retry-after": formatdate(time.time() + 30, usegmt=True)})
    assert later is not None and 25 <= later <= 31
    assert parse_retry_after({"retry-after": "soon"}) is None
    assert parse_retry_after({}) is None and parse_retry_after(None) is None


def test_backoff_grows_with_jitter_and_respects_retry_after_and_cap():
    ep = EndpointConfig(backoff_initial_s=1.0, backoff_max_s=10.0)
    for attempt, (low, high) in {
        1: (0.5, 1.0),
        2: (1.0, 2.0),
        3: (2.0, 4.0),
        8: (5.0, 10.0),
    }.items():
        waits = [backoff_seconds(attempt, ep, None) for _ in range(50)]
        assert all(low <= w <= high for w in waits)
        assert len(set(waits)) > 1  # jittered
    assert backoff_seconds(1, ep, 7.0) >= 7.0
    assert backoff_seconds(1, ep, 300.0) == 10.0  # Retry-After capped by backoff_max_s


def test_status_outcomes():
    kw = dict(model="openai/gpt-4o", key_env="OPENAI_API_KEY")
    for status in [408, 409, 429, 500, 502, 503, 529]:
        assert isinstance(status_error_outcome(status, "x", **kw), TransientError), status
    for status in [400, 401, 403, 404, 422]:
        assert isinstance(status_error_outcome(status, "x", **kw), ModelError), status
    auth = status_error_outcome(401, "bad key", **kw)
    assert "authentication failed for openai/gpt-4o: check OPENAI_API_KEY" in str(auth)
    limited = status_error_outcome(429, "x", headers={"retry-after": "2"}, **kw)
    assert limited.retry_after_s == 2.0


def test_redact_masks_the_key_and_its_tail():
    key = "sk-abcdefghijklmnop12345678"
    assert key not in redact(f"bad key {key}", key)
    assert "12345678" not in redact("Incorrect API key provided: sk-abc***12345678", key)
    assert redact("nothing secret", key) == "nothing secret"


def test_call_with_retries_counts_attempts_and_stops_on_final_errors():
    ep = EndpointConfig(max_retries=2, backoff_initial_s=0.0, backoff_max_s=0.0)
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise TransientError("HTTP 503")
        return "ok"

    assert call_with_retries(flaky, endpoint=ep, model="m", sleep=lambda s: None) == "ok"
    assert len(calls) == 3

    calls.clear()

    def always_down():
        calls.append(1)
        raise TransientError("HTTP 503 down")

    with pytest.raises(
        ModelError, match="gave up after 3 attempts; last error: HTTP 503 down"
    ) as info:
        call_with_retries(always_down, endpoint=ep, model="m", sleep=lambda s: None)
    assert info.value.retryable and len(calls) == 3

    calls.clear()

    def rejected():
        calls.append(1)
        raise ModelError("invalid request")

    with pytest.raises(ModelError, match="invalid request"):
        call_with_retries(rejected, endpoint=ep, model="m", sleep=lambda s: None)
    assert len(calls) == 1


def test_a_cost_cap_with_an_unpriced_model_fails_at_start_unless_priced_or_allowed():
    """An unknown model used to cost $0 with a warning, so --max-cost capped nothing."""
    from codemonkeys.config_loading import load_config
    from codemonkeys.llm import check_prices

    local = ['models.primary.model="openai/my-local-coder"', "run.max_cost_usd=5"]
    with pytest.raises(ModelError, match="no price is known for openai/my-local-coder") as info:
        check_prices(load_config(None, local, env={}))
    assert "models.prices.my-local-coder" in str(info.value)
    assert "models.allow_unpriced=true" in str(info.value)
    per_problem = ['models.primary.model="openai/my-local-coder"', "run.max_cost_per_problem_usd=1"]
    with pytest.raises(ModelError):
        check_prices(load_config(None, per_problem, env={}))
    relevance = [
        'models.primary.model="anthropic/claude-sonnet-4-5"',
        'models.relevance.model="openai/my-local-coder"',
        "run.max_cost_usd=5",
    ]
    with pytest.raises(ModelError, match="my-local-coder"):
        check_prices(load_config(None, relevance, env={}))
    check_prices(
        load_config(None, [*local, "models.prices.my-local-coder={input=0.2, output=0.6}"], env={})
    )
    check_prices(load_config(None, [*local, "models.allow_unpriced=true"], env={}))
    check_prices(load_config(None, local[:1], env={}))  # no cap: nothing to protect
    check_prices(
        load_config(
            None,
            ['models.primary.model="anthropic/claude-sonnet-4-5"', "run.max_cost_usd=5"],
            env={},
        )
    )


def test_the_estimate_says_which_models_have_no_price():
    from codemonkeys.config_loading import load_config
    from codemonkeys.solve import estimate_cost

    cfg = load_config(None, ['models.primary.model="openai/my-local-coder"'], env={})
    est = estimate_cost(cfg, n_files=100, file_tokens=50_000, issue_tokens=300)
    assert est.unpriced == ["openai/my-local-coder"]
    assert "no price known for openai/my-local-coder" in est.describe()
    priced = load_config(None, ['models.primary.model="anthropic/claude-sonnet-4-5"'], env={})
    assert "no price" not in estimate_cost(priced, 100, 50_000, 300).describe()


def test_context_window_per_model_and_config_override():
    p = Pricing()
    assert p.capabilities("anthropic/claude-sonnet-4-5-20250929").context_window == 200_000
    assert p.capabilities("openai/gpt-4o-mini").context_window == 128_000
    assert p.capabilities("openai/gpt-5").context_window == 400_000
    # the rest of the family's capabilities stay
    assert p.capabilities("openai/gpt-5").max_tokens_param == "max_completion_tokens"
    assert p.capabilities("openai/my-local-model").context_window is None  # unknown: unchecked
    cfg = ModelsConfig(capabilities={"my-local-model": ModelCapabilities(context_window=8192)})
    assert Pricing(cfg).capabilities("openai/my-local-model").context_window == 8192
