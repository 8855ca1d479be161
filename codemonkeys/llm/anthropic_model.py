"""Anthropic Messages API through the official ``anthropic`` SDK.

- System messages become ``system`` text blocks; user/assistant turns become text blocks.
- A ``Message(cache=True)`` puts ``cache_control: ephemeral`` on its block (with
  ``ttl: 1h`` when the endpoint's ``cache_ttl`` is ``1h``): callers mark the
  end of the large shared prefix (system + context), so every trajectory of a problem
  reads that prefix from the prompt cache. Anthropic allows 4 breakpoints per request;
  beyond that the first two and the last two marks are kept.
- Usage maps ``cache_creation_input_tokens`` / ``cache_read_input_tokens`` to
  cache write / read tokens; the answer is the concatenation of the text blocks.
- Extended thinking when the model's capability has ``thinking_budget``: the API then only
  accepts the default temperature, so a temperature ladder degrades to repeated sampling
  (warned once). ``messages.create`` of this SDK version has no ``temperature`` argument;
  it is sent through ``extra_body``.
- The SDK's retries are off (``max_retries=0``); ``retry.call_with_retries`` retries.
"""

from __future__ import annotations

from typing import Any

import anthropic

from codemonkeys.llm.base import Message, ModelError, Usage, split_system
from codemonkeys.llm.sdk_model import Answer, SDKModel

MAX_CACHE_BREAKPOINTS = 4
MIN_THINKING_BUDGET = 1024
ONE_HOUR_WRITE_FACTOR = 2.0
"""A 1-hour cache write costs twice the input price (a 5-minute one 1.25x)."""


class AnthropicModel(SDKModel):
    """``anthropic/<name>``; see the module docstring for the request mapping."""

    provider = "anthropic"
    default_key_env = "ANTHROPIC_API_KEY"
    sdk_error = anthropic.AnthropicError
    status_error = anthropic.APIStatusError
    connection_error = anthropic.APIConnectionError
    timeout_error = anthropic.APITimeoutError
    client_class = anthropic.Anthropic

    # -- request -----------------------------------------------------------------------
    def _block(self, m: Message, cache: bool) -> dict[str, Any]:
        block: dict[str, Any] = {"type": "text", "text": m.content}
        if cache:
            block["cache_control"] = {"type": "ephemeral"}
            if self.endpoint.cache_ttl == "1h":
                block["cache_control"]["ttl"] = "1h"
        return block

    def cost(self, usage: Usage) -> float:
        """With the 1-hour TTL every cache write is a 1-hour write: 2x the input price."""
        base = self.pricing.cost(self.name, usage)
        price = self.pricing.price(self.name)
        if self.endpoint.cache_ttl != "1h" or price is None or not usage.cache_write_tokens:
            return base
        write_5m = price.cache_write if price.cache_write is not None else price.input
        extra = usage.cache_write_tokens * (ONE_HOUR_WRITE_FACTOR * price.input - write_5m)
        return base + extra / 1_000_000

    @staticmethod
    def _cache_marks(messages: list[Message]) -> set[int]:
        """Indices (into ``messages``) that get a cache breakpoint, at most 4."""
        marked = [i for i, m in enumerate(messages) if m.cache]
        if len(marked) > MAX_CACHE_BREAKPOINTS:
            marked = marked[:2] + marked[-2:]
        return set(marked)

    def build_request(
        self,
        messages: list[Message],
        *,
        temperature: float,
        max_tokens: int,
        stop: list[str] | None,
    ) -> dict[str, Any]:
        """The keyword arguments of ``messages.create`` (no network; tested directly)."""
        system, rest = split_system(messages)
        if not rest:
            raise ModelError(f"{self.name}: a request needs at least one user message")
        ordered = system + rest
        marks = self._cache_marks(ordered)
        caps = self.capabilities
        limit = caps.max_output_tokens
        kwargs: dict[str, Any] = {"model": self.model_id}
        if system:
            kwargs["system"] = [self._block(m, i in marks) for i, m in enumerate(system)]
        kwargs["messages"] = [
            {"role": m.role, "content": [self._block(m, (len(system) + j) in marks)]}
            for j, m in enumerate(rest)
        ]
        if stop:
            kwargs["stop_sequences"] = list(stop)
        extra_body: dict[str, Any] = {}
        if caps.thinking_budget:
            # the budget comes on top of the answer's tokens; both within the output limit
            total = max_tokens + caps.thinking_budget
            if limit:
                total = min(total, limit)
            budget = min(caps.thinking_budget, total - 1)
            if budget < MIN_THINKING_BUDGET:
                raise ModelError(
                    f"{self.name}: max_tokens {max_tokens} leaves no room for the thinking "
                    f"budget ({caps.thinking_budget}); raise max_output_tokens or lower it"
                )
            kwargs["max_tokens"] = total
            kwargs["thinking"] = {"type": "enabled", "budget_tokens": budget}
            self._warn_fixed_temperature(temperature, "extended thinking")
        else:
            kwargs["max_tokens"] = min(max_tokens, limit) if limit else max_tokens
            if caps.temperature:
                extra_body["temperature"] = temperature
            else:
                self._warn_fixed_temperature(temperature, "the model")
        if extra_body:
            kwargs["extra_body"] = extra_body
        return kwargs

    # -- response ----------------------------------------------------------------------
    def _parse(self, response: Any) -> Answer:
        """Text blocks joined, usage, and whether ``stop_reason`` says the token limit cut it."""
        try:
            blocks = response.content
            texts = [b.text for b in blocks if getattr(b, "type", None) == "text"]
            u = response.usage
            usage = Usage(
                input_tokens=int(u.input_tokens or 0),
                output_tokens=int(u.output_tokens or 0),
                cache_write_tokens=int(getattr(u, "cache_creation_input_tokens", None) or 0),
                cache_read_tokens=int(getattr(u, "cache_read_input_tokens", None) or 0),
            )
            cut = getattr(response, "stop_reason", None) == "max_tokens"
        except (AttributeError, TypeError, ValueError) as e:
            raise self._malformed(e) from None
        return Answer("".join(texts), usage, cut)

    # -- the call ----------------------------------------------------------------------
    def _create(self, kwargs: dict[str, Any]) -> Any:
        return self._client.messages.create(**kwargs, timeout=self.endpoint.timeout_s)
