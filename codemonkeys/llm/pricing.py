"""Prices (USD per million tokens) and capabilities per model (output limit, context
window, accepted parameters), in one table.

Names match by longest prefix, so dated snapshots (``claude-sonnet-4-5-20250929``) find
their family. Config entries (``[models.prices]``, ``[models.capabilities]``) override or
extend the table. An unknown model costs 0 with a single warning, never a crash.
Prices are the providers' list prices as published when this table was written; check
them before relying on cost caps, and override in config when they change.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping

from codemonkeys.config import ModelCapabilities, ModelsConfig, Price
from codemonkeys.llm.base import Usage

log = logging.getLogger(__name__)


def _p(i: float, o: float, w: float | None = None, r: float | None = None) -> Price:
    return Price(input=i, output=o, cache_write=w, cache_read=r)


PRICES: dict[str, Price] = {
    # stand-ins: free unless the config gives them a price (tests of cost caps do)
    "scripted": _p(0, 0, 0, 0),
    "replay": _p(0, 0, 0, 0),  # a replayed run spends nothing
    "local": _p(0, 0, 0, 0),  # local:<file.gguf> runs on this machine's CPU
    # Anthropic: cache write = 1.25x input (5-minute TTL), cache read = 0.1x input
    "claude-opus-4-5": _p(5, 25, 6.25, 0.5),
    "claude-opus-4-6": _p(5, 25, 6.25, 0.5),
    "claude-opus-4-1": _p(15, 75, 18.75, 1.5),
    "claude-opus-4-0": _p(15, 75, 18.75, 1.5),
    "claude-opus-4-2": _p(15, 75, 18.75, 1.5),
    # Claude Opus 4's dated id is claude-opus-4-20250514 (no "-0")
    "claude-opus-4": _p(15, 75, 18.75, 1.5),
    "claude-sonnet-4": _p(3, 15, 3.75, 0.3),
    "claude-3-7-sonnet": _p(3, 15, 3.75, 0.3),
    "claude-3-5-sonnet": _p(3, 15, 3.75, 0.3),
    "claude-haiku-4-5": _p(1, 5, 1.25, 0.1),
    "claude-3-5-haiku": _p(0.8, 4, 1.0, 0.08),
    "claude-3-haiku": _p(0.25, 1.25, 0.3, 0.03),
    # OpenAI: cached input is billed at the cache-read price, no write surcharge
    "gpt-5": _p(1.25, 10, 1.25, 0.125),
    "gpt-5.1": _p(1.25, 10, 1.25, 0.125),
    "gpt-5-mini": _p(0.25, 2, 0.25, 0.025),
    "gpt-5-nano": _p(0.05, 0.4, 0.05, 0.005),
    "gpt-4.1": _p(2, 8, 2, 0.5),
    "gpt-4.1-mini": _p(0.4, 1.6, 0.4, 0.1),
    "gpt-4.1-nano": _p(0.1, 0.4, 0.1, 0.025),
    "gpt-4o": _p(2.5, 10, 2.5, 1.25),
    "gpt-4o-mini": _p(0.15, 0.6, 0.15, 0.075),
    "o1": _p(15, 60, 15, 7.5),
    "o3": _p(2, 8, 2, 0.5),
    "o3-mini": _p(1.1, 4.4, 1.1, 0.55),
    "o4-mini": _p(1.1, 4.4, 1.1, 0.275),
}

_REASONING = ModelCapabilities(temperature=False, max_tokens_param="max_completion_tokens")

CAPABILITIES: dict[str, ModelCapabilities] = {
    # OpenAI reasoning models: max_completion_tokens, only the default temperature
    "o1": _REASONING,
    "o3": _REASONING,
    "o4": _REASONING,
    "gpt-5": _REASONING,
    "gpt-6": _REASONING,
    # chat variants of gpt-5 accept max_completion_tokens but not temperature either
    "gpt-5-chat": _REASONING,
}


def _longest_prefix(
    table: Mapping[str, object], name: str, separators: tuple[str, ...]
) -> str | None:
    """The longest key that is ``name`` itself or a prefix of it ending at a separator."""
    matches = [k for k in table if name == k or any(name.startswith(k + s) for s in separators)]
    return max(matches, key=len) if matches else None


# Output limits per family: requests asking for more are clamped (the API would reject them).
# Each entry keeps the rest of the family's capabilities (temperature, max_tokens_param).
OUTPUT_LIMITS: dict[str, int] = {
    "o1": 100_000,
    "o3": 100_000,
    "o4-mini": 100_000,
    "gpt-5": 128_000,
    "gpt-5-chat": 16_384,
    "gpt-4.1": 32_768,
    "gpt-4o": 16_384,
    "claude-opus-4-6": 64_000,
    "claude-opus-4-5": 64_000,
    "claude-opus-4-1": 32_000,
    "claude-opus-4": 32_000,
    "claude-sonnet-4": 64_000,
    "claude-3-7-sonnet": 64_000,
    "claude-3-5-sonnet": 8_192,
    "claude-haiku-4-5": 64_000,
    "claude-3-5-haiku": 8_192,
    "claude-3-haiku": 4_096,
}
for _name, _limit in OUTPUT_LIMITS.items():
    _family = _longest_prefix(CAPABILITIES, _name, ("-", "."))
    _base = CAPABILITIES[_family] if _family else ModelCapabilities()
    CAPABILITIES[_name] = _base.model_copy(update={"max_output_tokens": _limit})

# Context windows (input + output tokens of one request) per family, as published when this
# table was written; override with [models.capabilities.<name>] context_window = ...
CONTEXT_WINDOWS: dict[str, int] = {
    "local": 8_192,  # the n_ctx local:<file.gguf> is loaded with (llm/local_model.py)
    "claude": 200_000,
    "o1": 200_000,
    "o3": 200_000,
    "o4-mini": 200_000,
    "gpt-5": 400_000,
    "gpt-5-chat": 128_000,
    "gpt-4.1": 1_047_576,
    "gpt-4o": 128_000,
}
for _name in sorted(set(CAPABILITIES) | set(CONTEXT_WINDOWS), key=len):
    _window = CONTEXT_WINDOWS.get(_name) or CONTEXT_WINDOWS.get(
        _longest_prefix(CONTEXT_WINDOWS, _name, ("-", ".")) or ""
    )
    if _window:
        _family = _longest_prefix(CAPABILITIES, _name, ("-", "."))
        _base = CAPABILITIES[_family] if _family else ModelCapabilities()
        CAPABILITIES[_name] = _base.model_copy(update={"context_window": _window})


class Pricing:
    """Price and capability lookups with config overrides; warns once per unknown model."""

    def __init__(self, config: ModelsConfig | None = None):
        self._prices = dict(PRICES)
        self._caps = dict(CAPABILITIES)
        if config is not None:
            self._prices.update(config.prices)
            self._caps.update(config.capabilities)
        self._warned: set[str] = set()
        self._lock = threading.Lock()

    @staticmethod
    def _bare(model: str) -> str:
        """The table key: "anthropic/claude-x" -> "claude-x"; "scripted:<file>" -> "scripted",
        "replay:<log>" -> "replay", "local:<file.gguf>" -> "local"."""
        for stand_in in ("scripted", "replay", "local"):
            if model == stand_in or model.startswith(stand_in + ":"):
                return stand_in
        return model.split("/", 1)[1] if "/" in model else model

    def is_priced(self, model: str) -> bool:
        """Whether a price is known for ``model`` (built in or from the config)."""
        return _longest_prefix(self._prices, self._bare(model), ("-",)) is not None

    def price(self, model: str) -> Price | None:
        name = self._bare(model)
        key = _longest_prefix(self._prices, name, ("-",))
        if key is None:
            with self._lock:
                if name not in self._warned:
                    self._warned.add(name)
                    log.warning(
                        "no price known for model %r: its calls are counted as $0. "
                        "Add [models.prices.%s] input/output/cache_write/cache_read to the config.",
                        name,
                        name,
                    )
            return None
        return self._prices[key]

    def capabilities(self, model: str) -> ModelCapabilities:
        name = self._bare(model)
        key = _longest_prefix(self._caps, name, ("-", "."))
        return self._caps[key] if key else ModelCapabilities()

    def cost(self, model: str, usage: Usage) -> float:
        p = self.price(model)
        if p is None:
            return 0.0
        write = p.cache_write if p.cache_write is not None else p.input
        read = p.cache_read if p.cache_read is not None else p.input
        return (
            usage.input_tokens * p.input
            + usage.output_tokens * p.output
            + usage.cache_write_tokens * write
            + usage.cache_read_tokens * read
        ) / 1_000_000
