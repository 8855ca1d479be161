"""Stand-ins at the LLM boundary, for tests, demos and exact re-runs.

- ``scripted:path/to/policy.py``: a Python file with ``respond(request) -> str | dict``.
  ``request`` is a ``ScriptedRequest``; a dict answer may carry ``text``, ``usage``
  (a ``Usage`` mapping) so cost accounting can be exercised, and ``cut`` (the policy ran
  out of ``request.max_tokens``, as a provider reports it: ``Completion.cut``). The policy may sleep to
  behave like a real API. ``request.stage`` names the pipeline stage (the metadata the
  pipeline passes with every call), so a policy never has to guess it from prompt wording.
- ``replay:runs/<run>/calls.jsonl``: answers each request from a recorded call log (matched
  by the model-independent request hash), so a finished run re-executes without spending.
"""

from __future__ import annotations

import importlib.util
import threading
import time
from pathlib import Path
from types import ModuleType
from typing import Any

from pydantic import BaseModel

from codemonkeys.llm.base import Completion, Message, ModelError, Usage, request_hash
from codemonkeys.llm.pricing import Pricing
from codemonkeys.store import read_jsonl


class ScriptedRequest(BaseModel):
    messages: list[Message]
    temperature: float
    max_tokens: int
    stop: list[str] | None = None
    key: str = ""
    """The trajectory/ranking/selection key of the request (e.g. ``traj-2``)."""
    stage: str = ""
    """The pipeline stage (relevance, ranking, tests, edits, selection): how a policy
    recognises what is asked, instead of matching prompt wording."""

    @property
    def system(self) -> str:
        return "\n".join(m.content for m in self.messages if m.role == "system")

    @property
    def last(self) -> str:
        """The last user message."""
        for m in reversed(self.messages):
            if m.role == "user":
                return m.content
        return ""

    @property
    def prompt(self) -> str:
        return "\n".join(m.content for m in self.messages)

    @property
    def turn(self) -> int:
        """How many assistant answers came before this request."""
        return sum(1 for m in self.messages if m.role == "assistant")


def approx_tokens(text: str) -> int:
    return max(1, len(text) // 4)


def load_policy(path: Path) -> ModuleType:
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"scripted policy file not found: {path}")
    spec = importlib.util.spec_from_file_location(f"codemonkeys_policy_{abs(hash(path))}", path)
    if spec is None or spec.loader is None:
        raise ModelError(f"cannot load scripted policy {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not callable(getattr(module, "respond", None)):
        raise ModelError(f"{path} has no respond(request) function")
    return module


class ScriptedModel:
    def __init__(self, path: Path, pricing: Pricing | None = None):
        self.path = Path(path)
        self.name = f"scripted:{self.path.name}"
        self._policy = load_policy(self.path)
        self._pricing = pricing or Pricing()
        self._lock = threading.Lock()

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
        start = time.monotonic()
        req = ScriptedRequest(
            messages=messages,
            temperature=temperature,
            max_tokens=max_tokens,
            stop=stop,
            key=key,
            stage=stage,
        )
        answer: Any = self._policy.respond(req)
        cut = False
        if isinstance(answer, dict):
            text = str(answer.get("text", ""))
            usage = Usage.model_validate(answer.get("usage") or {})
            cut = bool(answer.get("cut"))
        else:
            text = str(answer)
            usage = Usage(
                input_tokens=sum(approx_tokens(m.content) for m in messages),
                output_tokens=approx_tokens(text),
            )
        return Completion(
            text=text,
            usage=usage,
            cost_usd=self._pricing.cost("scripted", usage),
            seconds=time.monotonic() - start,
            model=self.name,
            cut=cut,
        )


class ReplayModel:
    def __init__(self, path: Path):
        self.path = Path(path)
        if not self.path.is_file():
            raise ModelError(f"replay call log not found: {self.path}")
        self.name = f"replay:{self.path}"
        self._answers: dict[str, dict] = {}
        for rec in read_jsonl(self.path):
            h = rec.get("replay_hash")
            if h and "text" in rec and not rec.get("error"):
                self._answers.setdefault(h, rec)

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
        h = request_hash(
            "", messages, temperature=temperature, max_tokens=max_tokens, stop=stop, key=key
        )
        rec = self._answers.get(h)
        if rec is None:
            raise ModelError(
                f"replay: no recorded answer for this request in {self.path} (the prompts, "
                "config or code changed since the recording)"
            )
        return Completion(
            text=rec["text"],
            usage=Usage.model_validate(rec.get("usage") or {}),
            cost_usd=0.0,
            seconds=0.0,
            model=self.name,
            cut=bool(rec.get("cut")),
        )
