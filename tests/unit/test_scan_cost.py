"""The default relevance model and the scan's cost estimate."""

from __future__ import annotations

from pathlib import Path

from codemonkeys.config import Config, ContextConfig, EndpointConfig, ModelsConfig
from codemonkeys.context.files import enumerate_files
from codemonkeys.context.scan_cost import estimate_scan, scan_cost
from codemonkeys.llm.pricing import Pricing


def _models(primary: str, base_url: str | None = None, relevance: str | None = None):
    return ModelsConfig(
        primary=EndpointConfig(model=primary, base_url=base_url, max_concurrency=3),
        relevance=EndpointConfig(model=relevance) if relevance else None,
    )


def test_relevance_defaults_to_the_providers_small_model():
    anthropic = _models("anthropic/claude-sonnet-4-5")
    assert anthropic.relevance_endpoint().model == "anthropic/claude-haiku-4-5"
    assert anthropic.relevance_endpoint().max_concurrency == 3  # the primary's settings
    assert anthropic.relevance_is_default_small()
    assert _models("openai/gpt-5").relevance_endpoint().model == "openai/gpt-5-mini"
    assert Pricing().price("anthropic/claude-haiku-4-5") is not None
    assert Pricing().price("openai/gpt-5-mini") is not None


def test_relevance_model_stays_the_primary_for_servers_and_stand_ins_and_when_set():
    local = _models("openai/qwen-32b", base_url="http://127.0.0.1:8000/v1")
    assert local.relevance_endpoint().model == "openai/qwen-32b"
    assert _models("scripted:x.py").relevance_endpoint().model == "scripted:x.py"
    chosen = _models("anthropic/claude-sonnet-4-5", relevance="anthropic/claude-sonnet-4-5")
    assert chosen.relevance_endpoint().model == "anthropic/claude-sonnet-4-5"
    assert not chosen.relevance_is_default_small()


def test_the_relevance_fingerprint_follows_the_default_small_model():
    a = Config(models=_models("anthropic/claude-sonnet-4-5"))
    b = Config(
        models=_models("anthropic/claude-sonnet-4-5", relevance="anthropic/claude-sonnet-4-5")
    )
    assert a.fingerprint("relevance") != b.fingerprint("relevance")


def test_batch_costs_half_where_the_provider_has_a_batch_api():
    p = Pricing()
    c = scan_cost(p, "anthropic/claude-haiku-4-5", 10, 1_000_000, base_url=None)
    assert c.usd == round(1.0 + 10 * 120 * 5 / 1e6, 4)  # $1/M input, $5/M output
    assert c.batch_usd == round(c.usd / 2, 4)
    assert scan_cost(p, "openai/m", 1, 10, base_url="http://127.0.0.1:1/v1").batch_usd is None


def test_estimate_scan_per_model_with_and_without_prefilter(tmp_path: Path):
    for i in range(80):
        (tmp_path / f"mod{i}.py").write_text(f"def f{i}(x):\n    return x + {i}\n" * 20)
    (tmp_path / "target.py").write_text("def parse_date(text):\n    return text\n")
    paths = sorted(p.name for p in tmp_path.iterdir())
    cfg = Config(
        models=_models("anthropic/claude-sonnet-4-5"),
        context=ContextConfig(prefilter_share=0.25, prefilter_min_files=5),
    )
    enum = enumerate_files(tmp_path, paths, cfg.context)
    est = estimate_scan(cfg, enum, "parse_date() fails on single-digit months", tmp_path)
    haiku, sonnet = est.full
    assert (haiku.model, sonnet.model) == ("anthropic/claude-haiku-4-5", cfg.models.primary.model)
    assert haiku.files == 81 and haiku.prompt_tokens > sum(f.tokens for f in enum.files)
    assert sonnet.usd > 2.5 * haiku.usd  # $3 vs $1 per M input
    kept = est.prefiltered[0]
    assert kept.files == 21 and kept.prompt_tokens < haiku.prompt_tokens / 3
    text = est.describe()
    assert "anthropic/claude-haiku-4-5 (the provider's small model, by default" in text
    assert "prefilter 25%: 21 files" in text and "batch" in text
    assert "<- this run\n" in text and "(batch)" not in text
    cfg.context.relevance_batch = True
    assert "<- this run (batch)" in estimate_scan(cfg, enum, "x", tmp_path).describe()
