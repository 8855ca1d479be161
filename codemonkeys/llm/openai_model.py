"""OpenAI Chat Completions through the official ``openai`` SDK, also for any
OpenAI-compatible server (vLLM, SGLang, Ollama, llama.cpp) via ``EndpointConfig.base_url``.

- Messages map one to one (system/user/assistant); ``cache`` marks are ignored (OpenAI
  caches long prefixes automatically and reports ``prompt_tokens_details.cached_tokens``).
- Usage: uncached input = ``prompt_tokens - cached_tokens``, cache read = ``cached_tokens``,
  output = ``completion_tokens``. Local servers may report no usage: counted as 0 tokens,
  with a debug log line saying so.
- Per-model capabilities (``pricing.capabilities``): reasoning models take
  ``max_completion_tokens`` instead of ``max_tokens`` and only the default temperature, so
  temperature is not sent and a temperature ladder degrades to repeated sampling (warned
  once, naming the model); ``reasoning_effort`` when configured; ``max_output_tokens`` clamps.
- The SDK's retries are off (``max_retries=0``); ``retry.call_with_retries`` retries.
"""

from __future__ import annotations

import logging
from typing import Any

import openai

from codemonkeys.llm.base import Message, ModelError, Usage
from codemonkeys.llm.sdk_model import Answer, SDKModel

log = logging.getLogger(__name__)


class OpenAIModel(SDKModel):
    """``openai/<name>``; see the module docstring for the request mapping."""

    provider = "openai"
    default_key_env = "OPENAI_API_KEY"
    keyless_with_base_url = True
    sdk_error = openai.OpenAIError
    status_error = openai.APIStatusError
    connection_error = openai.APIConnectionError
    timeout_error = openai.APITimeoutError
    client_class = openai.OpenAI

    def __repr__(self) -> str:  # never show the client (it holds the key)
        return f"OpenAIModel({self.name!r}, base_url={self.endpoint.base_url!r})"

    # -- request -----------------------------------------------------------------------
    def build_request(
        self,
        messages: list[Message],
        *,
        temperature: float,
        max_tokens: int,
        stop: list[str] | None,
    ) -> dict[str, Any]:
        """The keyword arguments of ``chat.completions.create`` (no network)."""
        if not messages:
            raise ModelError(f"{self.name}: a request needs at least one message")
        caps = self.capabilities
        limit = caps.max_output_tokens
        kwargs: dict[str, Any] = {
            "model": self.model_id,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            caps.max_tokens_param: min(max_tokens, limit) if limit else max_tokens,
        }
        if caps.temperature:
            kwargs["temperature"] = temperature
        else:
            self._warn_fixed_temperature(temperature, "the model")
        if caps.reasoning_effort:
            kwargs["reasoning_effort"] = caps.reasoning_effort
        if stop:
            kwargs["stop"] = list(stop)
        return kwargs

    # -- response ----------------------------------------------------------------------
    def _usage(self, u: Any) -> Usage:
        if u is None:
            log.debug(
                "%s: the server reported no token usage; counting 0 tokens for this call",
                self.name,
            )
            return Usage()
        prompt = int(getattr(u, "prompt_tokens", None) or 0)
        details = getattr(u, "prompt_tokens_details", None)
        cached = int(getattr(details, "cached_tokens", None) or 0) if details is not None else 0
        cached = min(cached, prompt) if prompt else cached
        return Usage(
            input_tokens=max(0, prompt - cached),
            output_tokens=int(getattr(u, "completion_tokens", None) or 0),
            cache_read_tokens=cached,
        )

    def _parse(self, response: Any) -> Answer:
        """Text, usage, and whether ``finish_reason`` says the token limit cut it."""
        try:
            choices = response.choices
            if not choices:
                raise ValueError("no choices in the response")
            text = choices[0].message.content or ""
            if not isinstance(text, str):
                raise TypeError(f"message content is {type(text).__name__}, not text")
            usage = self._usage(getattr(response, "usage", None))
            cut = getattr(choices[0], "finish_reason", None) == "length"
        except (AttributeError, TypeError, ValueError, IndexError) as e:
            raise self._malformed(e) from None
        return Answer(text, usage, cut)

    # -- the call ----------------------------------------------------------------------
    def _create(self, kwargs: dict[str, Any]) -> Any:
        return self._client.chat.completions.create(**kwargs, timeout=self.endpoint.timeout_s)
