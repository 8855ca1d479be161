"""The provider registry (``llm.PROVIDERS``): a model string's provider picks its class, and
the key variable and the keyless-with-base_url rule come from that class."""

from __future__ import annotations

import pytest

from codemonkeys.config import EndpointConfig, ModelsConfig
from codemonkeys.llm import PROVIDERS, api_key_env, build_provider, provider_class
from codemonkeys.llm.base import ModelError
from codemonkeys.llm.pricing import Pricing


def test_every_registered_provider_names_its_key_variable():
    for provider in PROVIDERS:
        cls = provider_class(provider)
        assert cls is not None and cls.provider == provider
        endpoint = EndpointConfig(model=f"{provider}/some-model")
        assert api_key_env(endpoint) == cls.default_key_env
    assert api_key_env(EndpointConfig(model="scripted:policy.py")) is None
    assert api_key_env(EndpointConfig(model="openai/x", api_key_env="MY_KEY")) == "MY_KEY"


def test_a_missing_key_is_refused_unless_the_provider_serves_keyless_at_a_base_url(monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    pricing = Pricing(ModelsConfig())
    with pytest.raises(ModelError, match="ANTHROPIC_API_KEY is not set"):
        build_provider(EndpointConfig(model="anthropic/claude-x"), pricing)
    with pytest.raises(ModelError, match="OPENAI_API_KEY is not set"):
        build_provider(EndpointConfig(model="openai/gpt-x"), pricing)
    local = build_provider(
        EndpointConfig(model="openai/served", base_url="http://127.0.0.1:9/v1"), pricing
    )
    assert local.name == "openai/served"


def test_an_unknown_provider_names_the_registered_ones():
    with pytest.raises(ModelError) as e:
        build_provider(EndpointConfig(model="mistral/large"), Pricing(ModelsConfig()))
    assert all(f"{p}/" in str(e.value) for p in PROVIDERS)
