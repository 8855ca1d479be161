"""What the Anthropic and OpenAI providers share: one attempt through the SDK, error
translation (retryable or not, key redacted), our retries, usage and cost."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, ClassVar, NamedTuple

from codemonkeys.config import EndpointConfig
from codemonkeys.llm.base import Completion, Message, ModelError, Usage
from codemonkeys.llm.pricing import Pricing
from codemonkeys.llm.retry import (
    GARBLED_BODY,
    TransientError,
    call_with_retries,
    redact,
    translate_sdk_error,
)

log = logging.getLogger(__name__)


class Answer(NamedTuple):
    """What ``_parse`` reads from one response."""

    text: str
    usage: Usage
    cut: bool = False
    """Stopped at the output token limit (see ``Completion.cut``)."""


class SDKModel:
    """Base of the SDK providers. Subclasses set the SDK's error classes and implement
    ``build_request``, ``_create`` (one request) and ``_parse`` (response -> text, usage)."""

    provider: ClassVar[str]
    default_key_env: ClassVar[str]
    keyless_with_base_url: ClassVar[bool] = False
    """True: with a ``base_url`` (a local compatible server) no key is needed."""
    sdk_error: ClassVar[type[BaseException]]
    status_error: ClassVar[type[BaseException]]
    connection_error: ClassVar[type[BaseException]]
    timeout_error: ClassVar[type[BaseException]]
    client_class: ClassVar[Any]
    """The SDK's client (``anthropic.Anthropic``, ``openai.OpenAI``); our retries, not its."""

    def __init__(
        self,
        name: str,
        endpoint: EndpointConfig,
        pricing: Pricing,
        *,
        api_key: str,
        stop: threading.Event | None = None,
    ):
        self.stop = stop
        """The run's stop flag: a retry backoff wait ends at once when it is set."""
        self.name = f"{self.provider}/{name}"
        self.model_id = name
        self.endpoint = endpoint
        self.pricing = pricing
        self.capabilities = pricing.capabilities(self.name)
        self._key_env = endpoint.api_key_env or self.default_key_env
        self._secret = api_key
        self._warned = False
        self._warn_lock = threading.Lock()
        self._client = self.client_class(
            api_key=api_key,
            base_url=endpoint.base_url or None,
            timeout=endpoint.timeout_s,
            max_retries=0,
        )

    def __repr__(self) -> str:  # never show the client (it holds the key)
        return f"{type(self).__name__}({self.name!r})"

    # -- to implement --------------------------------------------------------------------
    def build_request(
        self,
        messages: list[Message],
        *,
        temperature: float,
        max_tokens: int,
        stop: list[str] | None,
    ) -> dict[str, Any]:
        raise NotImplementedError

    def _create(self, kwargs: dict[str, Any]) -> Any:
        raise NotImplementedError

    def cost(self, usage: Usage) -> float:
        """USD of one answer (providers with other cache prices override this)."""
        return self.pricing.cost(self.name, usage)

    def _parse(self, response: Any) -> Answer:
        raise NotImplementedError

    # -- shared --------------------------------------------------------------------------
    def _warn_fixed_temperature(self, temperature: float, why: str) -> None:
        """Once per model: a non-default temperature is not sent (``why`` names the cause)."""
        if temperature == 1.0:
            return
        with self._warn_lock:
            if self._warned:
                return
            self._warned = True
        log.warning(
            "%s: %s only accepts the default temperature; temperature %s is not sent, so a "
            "temperature ladder degrades to repeated sampling at temperature 1",
            self.name,
            why,
            temperature,
        )

    def _malformed(self, exc: BaseException) -> TransientError:
        """A 2xx response of the wrong shape: retried as a server fault."""
        return TransientError(
            f"malformed response from {self.name}: {type(exc).__name__}: "
            f"{redact(str(exc), self._secret)[:200]}"
        )

    def _attempt(self, kwargs: dict[str, Any]) -> Answer:
        try:
            response = self._create(kwargs)
        except (self.sdk_error, *GARBLED_BODY) as e:  # GARBLED_BODY: a 2xx body that is not JSON
            outcome = self._translate(e)
        else:
            return self._parse(response)
        raise outcome from None

    def _translate(self, exc: BaseException) -> TransientError | ModelError:
        outcome = translate_sdk_error(
            exc,
            status_error=self.status_error,
            connection_error=self.connection_error,
            timeout_error=self.timeout_error,
            model=self.name,
            key_env=self._key_env,
            secret=self._secret,
        )
        if outcome is None:
            outcome = ModelError(
                f"{self.name}: {type(exc).__name__}: {redact(str(exc), self._secret)[:300]}"
            )
        return outcome

    def complete(
        self,
        messages: list[Message],
        *,
        temperature: float,
        max_tokens: int,
        stop: list[str] | None = None,
        key: str = "",
        stage: str = "",
    ) -> Completion:
        kwargs = self.build_request(
            messages, temperature=temperature, max_tokens=max_tokens, stop=stop
        )
        start = time.monotonic()
        answer = call_with_retries(
            lambda: self._attempt(kwargs), endpoint=self.endpoint, model=self.name, stop=self.stop
        )
        return Completion(
            text=answer.text,
            usage=answer.usage,
            cost_usd=self.cost(answer.usage),
            seconds=time.monotonic() - start,
            model=self.name,
            cut=answer.cut,
        )
