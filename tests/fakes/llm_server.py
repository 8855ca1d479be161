"""A local HTTP server that speaks the Anthropic Messages and OpenAI Chat Completions wire
formats, so provider code is exercised through the real SDKs without a live API.

Usage::

    with LLMServer() as server:
        server.enqueue(ANTHROPIC_PATH, Reply(429, anthropic_error(429), headers={"retry-after": "1"}))
        server.enqueue(ANTHROPIC_PATH, Reply(200, anthropic_message("hi", input_tokens=10)))
        client = anthropic.Anthropic(base_url=server.url, ...)
        ...
        body = server.requests(ANTHROPIC_PATH)[0].json

Each path has a FIFO queue of scripted replies; when the queue is empty the path's default
(``set_default``) answers, and without one a plain successful answer in the path's format.
A reply can be a status with a JSON or raw (malformed) body, extra headers, and a delay
(a delay longer than the client's timeout is a hanging response). A reply may also be a
callable ``(RecordedRequest) -> Reply`` to answer from the request. Every request is
recorded (headers, raw and parsed body, arrival time) and the peak number of requests in
flight at once is tracked, for concurrency assertions.
"""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ANTHROPIC_PATH = "/v1/messages"
OPENAI_PATH = "/v1/chat/completions"


@dataclass
class Reply:
    """One scripted HTTP response."""

    status: int = 200
    body: Any = None
    """dict/list: sent as JSON; str/bytes: sent verbatim (e.g. malformed JSON)."""
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    """Sleep this long before answering; longer than the client timeout = a hang."""
    content_type: str = "application/json"


Responder = Reply | Callable[["RecordedRequest"], Reply]


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    """Header names in lower case."""
    raw: bytes
    json: Any
    """The parsed JSON body, or None when the body is not JSON."""
    received_at: float
    """time.monotonic() at arrival."""


# -- wire-format builders ----------------------------------------------------------------


def anthropic_message(
    text: str = "ok",
    *,
    input_tokens: int = 10,
    output_tokens: int = 5,
    cache_creation_input_tokens: int | None = None,
    cache_read_input_tokens: int | None = None,
    thinking: str | None = None,
    model: str = "claude-test",
    stop_reason: str = "end_turn",
) -> dict[str, Any]:
    """A Messages API response body; ``thinking`` adds a thinking block before the text."""
    content: list[dict[str, Any]] = []
    if thinking is not None:
        content.append({"type": "thinking", "thinking": thinking, "signature": "sig"})
    content.append({"type": "text", "text": text})
    usage: dict[str, Any] = {"input_tokens": input_tokens, "output_tokens": output_tokens}
    if cache_creation_input_tokens is not None:
        usage["cache_creation_input_tokens"] = cache_creation_input_tokens
    if cache_read_input_tokens is not None:
        usage["cache_read_input_tokens"] = cache_read_input_tokens
    return {
        "id": "msg_test",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": usage,
    }


def anthropic_error(
    status: int, message: str = "error", error_type: str | None = None
) -> dict[str, Any]:
    types = {
        400: "invalid_request_error",
        401: "authentication_error",
        403: "permission_error",
        404: "not_found_error",
        429: "rate_limit_error",
        529: "overloaded_error",
    }
    return {
        "type": "error",
        "error": {"type": error_type or types.get(status, "api_error"), "message": message},
    }


def openai_chat_completion(
    text: str | None = "ok",
    *,
    prompt_tokens: int = 10,
    completion_tokens: int = 5,
    cached_tokens: int | None = None,
    include_usage: bool = True,
    model: str = "gpt-test",
    finish_reason: str = "stop",
) -> dict[str, Any]:
    """A Chat Completions response body; ``include_usage=False`` mimics local servers that
    report none."""
    body: dict[str, Any] = {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": finish_reason,
            }
        ],
    }
    if include_usage:
        usage: dict[str, Any] = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
        if cached_tokens is not None:
            usage["prompt_tokens_details"] = {"cached_tokens": cached_tokens}
        body["usage"] = usage
    return body


def openai_error(
    status: int, message: str = "error", error_type: str | None = None
) -> dict[str, Any]:
    return {
        "error": {
            "message": message,
            "type": error_type or "api_error",
            "param": None,
            "code": None,
        }
    }


def _default_reply(path: str) -> Reply:
    if path.rstrip("/").endswith("/messages"):
        return Reply(200, anthropic_message())
    return Reply(200, openai_chat_completion())


# -- the server --------------------------------------------------------------------------


class LLMServer:
    """A threaded HTTP server on 127.0.0.1 (free port) with scripted replies per path."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queues: dict[str, deque[Responder]] = defaultdict(deque)
        self._defaults: dict[str, Responder] = {}
        self._requests: list[RecordedRequest] = []
        self._stopping = threading.Event()
        self.in_flight = 0
        self.peak_in_flight = 0
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> LLMServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server naming)
                server._handle(self)

            do_GET = do_POST  # noqa: N815

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.02},
            name="llm-server",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes handlers sleeping in a scripted delay
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> LLMServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Base URL for the Anthropic SDK (it appends /v1/messages)."""
        assert self._httpd is not None, "server not started"
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def openai_url(self) -> str:
        """Base URL for the OpenAI SDK (it appends /chat/completions)."""
        return self.url + "/v1"

    # -- scripting ---------------------------------------------------------------------
    def enqueue(self, path: str, *replies: Responder) -> None:
        """Answer the next requests to ``path`` with these replies, in order."""
        with self._lock:
            self._queues[path].extend(replies)

    def set_default(self, path: str, reply: Responder) -> None:
        """The answer for ``path`` once its queue is empty."""
        with self._lock:
            self._defaults[path] = reply

    def reset(self) -> None:
        """Forget queues, defaults, recorded requests and the concurrency peak."""
        with self._lock:
            self._queues.clear()
            self._defaults.clear()
            self._requests.clear()
            self.peak_in_flight = self.in_flight

    def requests(self, path: str | None = None) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self._requests if path is None or r.path == path]

    # -- serving -----------------------------------------------------------------------
    def _next_reply(self, req: RecordedRequest) -> Reply:
        with self._lock:
            queue = self._queues.get(req.path)
            responder = queue.popleft() if queue else self._defaults.get(req.path)
        if responder is None:
            return _default_reply(req.path)
        return responder(req) if callable(responder) else responder

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("content-length") or 0)
        raw = h.rfile.read(length) if length else b""
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = None
        req = RecordedRequest(
            method=h.command,
            path=h.path.split("?", 1)[0],
            headers={k.lower(): v for k, v in h.headers.items()},
            raw=raw,
            json=parsed,
            received_at=time.monotonic(),
        )
        with self._lock:
            self._requests.append(req)
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            reply = self._next_reply(req)
            if reply.delay_s > 0 and self._stopping.wait(reply.delay_s):
                return
            if isinstance(reply.body, bytes):
                payload = reply.body
            elif isinstance(reply.body, str):
                payload = reply.body.encode()
            elif reply.body is None:
                payload = b""
            else:
                payload = json.dumps(reply.body).encode()
            h.send_response(reply.status)
            h.send_header("content-type", reply.content_type)
            h.send_header("content-length", str(len(payload)))
            for k, v in reply.headers.items():
                h.send_header(k, v)
            h.end_headers()
            h.wfile.write(payload)
            h.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout); nothing to answer
        finally:
            with self._lock:
                self.in_flight -= 1
