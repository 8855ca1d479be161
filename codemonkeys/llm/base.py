"""The model protocol and the records every provider returns."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Literal, Protocol, runtime_checkable

from pydantic import BaseModel, Field

from codemonkeys.errors import CodemonkeysError


class Message(BaseModel):
    role: Literal["system", "user", "assistant"]
    content: str
    cache: bool = False
    """Put a prompt-cache breakpoint after this message (Anthropic cache_control).
    Mark the end of the large shared prefix (system + context) with it."""
    cut: bool = False
    """An answer the provider stopped at the output token limit (``Completion.cut``), kept
    in a conversation's record so a resumed state machine treats it as cut too. Never sent."""


class Usage(BaseModel):
    input_tokens: int = 0
    """Uncached input tokens."""
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cache_read_tokens=self.cache_read_tokens + other.cache_read_tokens,
            cache_write_tokens=self.cache_write_tokens + other.cache_write_tokens,
        )


class Completion(BaseModel):
    text: str
    usage: Usage = Field(default_factory=Usage)
    cost_usd: float = 0.0
    seconds: float = 0.0
    model: str = ""
    cached: bool = False
    """True when answered from the run's call log instead of the provider (resume/replay)."""
    cut: bool = False
    """The provider stopped the answer at ``max_tokens`` (OpenAI ``finish_reason``
    ``"length"``, Anthropic ``stop_reason`` ``"max_tokens"``): the text is a beginning, never
    to be parsed as a whole answer. Stages handle it like a malformed answer."""


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def clean_text(text: str) -> str:
    """A model's answer with lone surrogates (which JSON APIs can return, e.g. ``"\\udcff"``)
    replaced by U+FFFD: they cannot be encoded, sent back in the conversation, or written
    into a sandbox."""
    return _LONE_SURROGATE.sub("\ufffd", text)


class ModelError(CodemonkeysError, RuntimeError):
    """A model call failed for good (after retries, or an error that is never retried).
    The message is meant for the user and never contains an API key."""

    def __init__(self, message: str, *, retryable: bool = False):
        super().__init__(message)
        self.retryable = retryable


class ContextLengthExceeded(ModelError):
    """The conversation does not fit the model's context window: found before sending (the
    window is known, see ``ModelCapabilities.context_window``) or answered by the provider.
    Final, never retried: the caller ends what it was doing in a recorded state."""


@runtime_checkable
class Model(Protocol):
    """Anything that completes a conversation.

    ``key`` distinguishes otherwise identical requests (e.g. trajectory 3 of 10 at the same
    temperature); it is part of the request hash used for resume and replay, never sent.
    ``stage`` names the pipeline stage the call belongs to (relevance, ranking, tests,
    edits, selection): metadata for stand-ins at the LLM boundary (scripted policies
    recognise the stage from it), never sent and not part of the request hash.
    """

    name: str

    def complete(
        self,
        messages: list[Message],
        *,
        temperature: float,
        max_tokens: int,
        stop: list[str] | None = None,
        key: str = "",
        stage: str = "",
    ) -> Completion: ...


def request_hash(
    model: str,
    messages: list[Message],
    *,
    temperature: float,
    max_tokens: int,
    stop: list[str] | None,
    key: str,
) -> str:
    blob = json.dumps(
        {
            "model": model,
            "messages": [[m.role, m.content] for m in messages],
            "temperature": temperature,
            "max_tokens": max_tokens,
            "stop": stop or [],
            "key": key,
        },
        sort_keys=True,
        ensure_ascii=False,
    ).encode("utf-8", "surrogatepass")
    return hashlib.sha256(blob).hexdigest()


def split_system(messages: list[Message]) -> tuple[list[Message], list[Message]]:
    """System messages first (providers take them separately), the rest in order."""
    system = [m for m in messages if m.role == "system"]
    rest = [m for m in messages if m.role != "system"]
    return system, rest
