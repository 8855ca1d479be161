"""Retries for provider calls, shared by every HTTP provider (the SDKs' own retries are off).

Providers translate each SDK exception into one of two outcomes:

- ``TransientError``: worth another attempt (429, 408, 409, 5xx incl. 529 overloaded,
  connection errors, timeouts, a garbled response body), optionally with the server's
  ``Retry-After``;
- ``ModelError``: final at once (400, 401, 403, 404, 422, ...), with a message for the user;
  ``ContextLengthExceeded`` when the request is longer than the model's context window.

``call_with_retries`` then runs the attempt with tenacity: exponential backoff with jitter
between ``backoff_initial_s`` and ``backoff_max_s``, at least the server's Retry-After
(capped by ``backoff_max_s``), ``max_retries`` retries after the first attempt. When the
retries are used up it raises ``ModelError(retryable=True)`` naming the last error.

Every message passes through ``redact`` so an API key echoed by a server never reaches an
exception, a log line or the call log.
"""

from __future__ import annotations

import email.utils
import json
import logging
import random
import re
import threading
import time
from collections.abc import Callable, Mapping
from typing import TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt

from codemonkeys.config import EndpointConfig
from codemonkeys.errors import Interrupted
from codemonkeys.llm.base import ContextLengthExceeded, ModelError

log = logging.getLogger(__name__)

T = TypeVar("T")

GARBLED_BODY = (json.JSONDecodeError, UnicodeDecodeError)
"""What the SDKs raise when a 2xx response body is not valid JSON."""

RETRYABLE_STATUS = frozenset({408, 409, 429})
"""Besides every 5xx (500, 502, 503, 504, 529 overloaded, ...)."""


class TransientError(Exception):
    """One failed attempt that may succeed when repeated."""

    def __init__(self, message: str, *, retry_after_s: float | None = None):
        super().__init__(message)
        self.message = message
        self.retry_after_s = retry_after_s


def is_retryable_status(status: int) -> bool:
    return status in RETRYABLE_STATUS or status >= 500


def redact(text: str, secret: str | None) -> str:
    """``text`` with every occurrence of ``secret`` (and its tail) masked."""
    if not secret or len(secret) < 4:
        return text
    text = text.replace(secret, "***")
    tail = secret[-8:]  # servers often echo a partial key: "sk-...abcd1234"
    if len(secret) >= 16 and tail in text:
        text = text.replace(tail, "***")
    return text


def parse_retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Seconds the server asks us to wait: ``retry-after-ms``, else ``retry-after`` (seconds
    or an HTTP date). None when absent or unparsable."""
    if not headers:
        return None
    get = headers.get
    ms = get("retry-after-ms")
    if ms is not None:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    value = get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - time.time())


CONTEXT_LENGTH_ERROR = re.compile(
    r"prompt is too long|maximum context length|context[_ ]length[_ ]exceeded|context window"
    r"|exceeds? (?:the )?context limit|too many (?:input )?tokens",
    re.IGNORECASE,
)
"""How Anthropic, OpenAI and OpenAI-compatible servers (vLLM, ...) word a request that does
not fit the model's context."""

STATUS_HINTS: dict[int, str] = {
    400: "invalid request",
    401: "authentication failed",
    403: "permission denied",
    404: "not found (check the model name and base URL)",
    413: "request too large",
    422: "invalid request",
}


def status_error_outcome(
    status: int,
    detail: str,
    *,
    model: str,
    key_env: str | None,
    headers: Mapping[str, str] | None = None,
    secret: str | None = None,
) -> TransientError | ModelError:
    """The outcome of an HTTP error status: transient (retry) or final (a clear message)."""
    detail = redact(detail, secret)
    if is_retryable_status(status):
        label = {429: "rate limited", 529: "overloaded"}.get(status, "server error")
        return TransientError(
            f"HTTP {status} {label} from {model}: {detail}",
            retry_after_s=parse_retry_after(headers),
        )
    if status == 401:
        hint = f": check {key_env}" if key_env else ""
        return ModelError(f"authentication failed for {model}{hint} (HTTP 401: {detail})")
    if status == 403:
        hint = f" (check {key_env} and the account's access)" if key_env else ""
        return ModelError(f"permission denied for {model}{hint} (HTTP 403: {detail})")
    if status in (400, 413, 422) and CONTEXT_LENGTH_ERROR.search(detail):
        return ContextLengthExceeded(
            f"the conversation is longer than the context window of {model} (HTTP {status}: "
            f"{detail})"
        )
    what = STATUS_HINTS.get(status, "request rejected")
    return ModelError(f"{what} for {model} (HTTP {status}: {detail})")


def backoff_seconds(attempt: int, endpoint: EndpointConfig, retry_after_s: float | None) -> float:
    """Wait before retry number ``attempt`` (1-based): exponential with equal jitter, at
    least the server's Retry-After, never more than ``backoff_max_s``."""
    cap = endpoint.backoff_max_s
    base = min(cap, endpoint.backoff_initial_s * (2 ** (attempt - 1)))
    wait = base / 2 + random.uniform(0, base / 2)
    if retry_after_s is not None:
        wait = max(wait, min(retry_after_s, cap))
    return wait


def stop_aware_sleep(stop: threading.Event | None) -> Callable[[float], None]:
    """A tenacity ``sleep`` that wakes up when ``stop`` is set and raises ``Interrupted``."""

    def sleep(seconds: float) -> None:
        if stop is None:
            time.sleep(seconds)
        elif stop.wait(seconds):
            raise Interrupted("run interrupted during a retry backoff")

    return sleep


def call_with_retries(
    attempt: Callable[[], T],
    *,
    endpoint: EndpointConfig,
    model: str,
    sleep: Callable[[float], None] | None = None,
    stop: threading.Event | None = None,
) -> T:
    """Run ``attempt`` until it returns, raises something other than ``TransientError``,
    or the endpoint's retries are used up (then ``ModelError(retryable=True)``).

    ``stop`` (the run's stop flag) ends a backoff wait the moment it is set, with
    ``Interrupted``: Ctrl-C during an outage does not wait out minutes of backoff."""
    if sleep is None:
        sleep = stop_aware_sleep(stop)

    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        retry_after = exc.retry_after_s if isinstance(exc, TransientError) else None
        return backoff_seconds(state.attempt_number, endpoint, retry_after)

    def before_sleep(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        delay = state.next_action.sleep if state.next_action else 0.0
        log.warning(
            "%s: %s; retry %d/%d in %.2fs",
            model,
            exc,
            state.attempt_number,
            endpoint.max_retries,
            delay,
        )

    retrying = Retrying(
        stop=stop_after_attempt(endpoint.max_retries + 1),
        wait=wait,
        retry=retry_if_exception_type(TransientError),
        before_sleep=before_sleep,
        sleep=sleep,
        reraise=True,
    )
    try:
        return retrying(attempt)
    except TransientError as e:
        attempts = endpoint.max_retries + 1
        raise ModelError(
            f"{model}: gave up after {attempts} attempt{'s' if attempts != 1 else ''}; "
            f"last error: {e.message}",
            retryable=True,
        ) from None


def _error_detail(exc: BaseException) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])[:300]
        if isinstance(err, str):
            return err[:300]
        if body.get("message"):  # the openai SDK hands over the inner "error" object
            return str(body["message"])[:300]
    return str(getattr(exc, "message", None) or exc)[:300]


def translate_sdk_error(
    exc: BaseException,
    *,
    status_error: type[BaseException],
    connection_error: type[BaseException],
    timeout_error: type[BaseException],
    model: str,
    key_env: str | None,
    secret: str | None,
) -> TransientError | ModelError | None:
    """Map an ``anthropic``/``openai`` SDK exception (both SDKs share this shape) to a
    retry outcome; None when ``exc`` is not an SDK error we understand."""
    if isinstance(exc, timeout_error):
        return TransientError(f"request to {model} timed out")
    if isinstance(exc, connection_error):
        return TransientError(f"connection to {model} failed: {redact(_error_detail(exc), secret)}")
    if isinstance(exc, status_error):
        response = getattr(exc, "response", None)
        headers = getattr(response, "headers", None)
        return status_error_outcome(
            int(getattr(exc, "status_code", 0) or 0),
            _error_detail(exc),
            model=model,
            key_env=key_env,
            headers=headers,
            secret=secret,
        )
    if isinstance(exc, GARBLED_BODY):
        return TransientError(f"malformed response from {model}: {redact(str(exc), secret)[:200]}")
    return None
