"""What wraps every provider: the call log, cost caps and per-endpoint concurrency.

``RecordingModel`` is what stages talk to. Each call:

1. looks its request hash up in the run's ``calls.jsonl``; a call already made (an earlier,
   killed invocation of the same run) is answered from the log, never paid for twice;
2. refuses a request that cannot fit the model's context window (``ContextLengthExceeded``,
   never sent), then checks the cost caps (per run, per problem: ``BudgetExceeded``);
3. takes a slot of the endpoint's concurrency limit and calls the provider;
4. appends the call (usage, cost, seconds, response text with lone surrogates replaced,
   whether the output token limit cut it; never the API key) to the log.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from codemonkeys.errors import BudgetExceeded, Interrupted
from codemonkeys.llm.base import (
    Completion,
    ContextLengthExceeded,
    Message,
    Model,
    Usage,
    clean_text,
    request_hash,
)
from codemonkeys.llm.callindex import CallIndex
from codemonkeys.llm.tokens import count_tokens
from codemonkeys.store import RunStore

CALLS_FILE = "calls.jsonl"


class CostTracker:
    """Spend so far, per run / problem / stage, against optional caps. Thread-safe."""

    def __init__(
        self,
        max_run_usd: float | None = None,
        max_problem_usd: float | None = None,
        stop: threading.Event | None = None,
    ):
        self.stop = stop or threading.Event()
        """Set on Ctrl-C: every later ``check`` raises ``Interrupted``."""
        self.max_run_usd = max_run_usd
        self.max_problem_usd = max_problem_usd
        self._lock = threading.Lock()
        self.total = 0.0
        self.by_problem: dict[str, float] = defaultdict(float)
        self.by_stage: dict[str, float] = defaultdict(float)

    def add(self, problem_id: str, stage: str, cost: float) -> None:
        with self._lock:
            self.total += cost
            self.by_problem[problem_id] += cost
            self.by_stage[stage] += cost

    def run_exhausted(self) -> bool:
        return self.max_run_usd is not None and self.total >= self.max_run_usd

    def problem_exhausted(self, problem_id: str) -> bool:
        return (
            self.max_problem_usd is not None and self.by_problem[problem_id] >= self.max_problem_usd
        )

    def check(self, problem_id: str) -> None:
        if self.stop.is_set():
            raise Interrupted("run interrupted: no new model calls are started")
        with self._lock:
            if self.run_exhausted():
                raise BudgetExceeded(
                    f"run cost cap reached: ${self.total:.2f} of ${self.max_run_usd:.2f}"
                )
            if self.problem_exhausted(problem_id):
                raise BudgetExceeded(
                    f"cost cap per problem reached for {problem_id}: "
                    f"${self.by_problem[problem_id]:.2f} of ${self.max_problem_usd:.2f}"
                )


class CallLog:
    """``calls.jsonl`` of a run, looked up by request hash for resume through an on-disk
    index (``callindex.CallIndex``): start-up and memory do not grow with the log."""

    def __init__(self, store: RunStore, path: str = CALLS_FILE):
        self.store = store
        self.path = store.root / path
        self.index = CallIndex(self.path)
        self._append_lock = threading.Lock()
        """Appends and their index updates in one order, so the index's offset only grows."""

    def lookup(self, h: str) -> dict | None:
        return self.index.lookup(h)

    def append(self, record: dict) -> tuple[int, int]:
        """Append one call; (offset, length) of its line in the log."""
        with self._append_lock:
            offset, length = self.store.append_jsonl(self.path, record)
            self.index.added(record, offset, length)
        return offset, length

    def spend(self) -> Iterator[tuple[str, str, float]]:
        """(problem, stage, USD) of every call in the log."""
        return self.index.spend()

    def records(self) -> list[dict]:
        """Every record, in memory: for tests and small logs (reports stream the file)."""
        return self.store.read_jsonl(self.path)


class EndpointLimit:
    """A concurrency limit shared by every model on one endpoint, with utilisation stats."""

    def __init__(self, max_concurrency: int):
        self.max_concurrency = max_concurrency
        self._sem = threading.BoundedSemaphore(max_concurrency)
        self._lock = threading.Lock()
        self.active = 0
        self.peak = 0
        self.busy_slot_seconds = 0.0

    @contextmanager
    def slot(self) -> Iterator[None]:
        self._sem.acquire()
        start = time.monotonic()
        with self._lock:
            self.active += 1
            self.peak = max(self.peak, self.active)
        try:
            yield
        finally:
            with self._lock:
                self.active -= 1
                self.busy_slot_seconds += time.monotonic() - start
            self._sem.release()


class RecordingModel:
    """A provider bound to (problem, stage) with the call log, caps and endpoint limit."""

    def __init__(
        self,
        inner: Model,
        *,
        calls: CallLog,
        costs: CostTracker,
        limit: EndpointLimit,
        problem_id: str,
        stage: str,
        record_prompts: bool = True,
        context_window: int | None = None,
        max_output_tokens: int | None = None,
    ):
        self.inner = inner
        self.context_window = context_window
        self.max_output_tokens = max_output_tokens
        self.name = inner.name
        self.calls = calls
        self.costs = costs
        self.limit = limit
        self.problem_id = problem_id
        self.stage = stage
        self.record_prompts = record_prompts

    def bind(self, *, problem_id: str | None = None, stage: str | None = None) -> RecordingModel:
        return RecordingModel(
            self.inner,
            calls=self.calls,
            costs=self.costs,
            limit=self.limit,
            problem_id=problem_id or self.problem_id,
            stage=stage or self.stage,
            record_prompts=self.record_prompts,
            context_window=self.context_window,
            max_output_tokens=self.max_output_tokens,
        )

    def _check_fits(self, messages: list[Message], max_tokens: int) -> None:
        """Refuse (``ContextLengthExceeded``) a request that cannot fit the model's context
        window, instead of sending it to fail with a 400 on every run."""
        if self.context_window is None:
            return
        if self.max_output_tokens is not None:
            max_tokens = min(max_tokens, self.max_output_tokens)
        need = request_tokens(messages, max_tokens)
        if need > self.context_window:
            raise ContextLengthExceeded(
                f"{self.name}: the conversation needs about {need:,} tokens (prompt + "
                f"{max_tokens:,} output) but the context window is {self.context_window:,}; "
                "not sent"
            )

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
        """``Model.complete`` through the call log, booked to this model's problem and
        stage (a ``stage`` given here, the ``Model`` protocol's, re-binds it)."""
        if stage and stage != self.stage:
            return self.bind(stage=stage).complete(
                messages, temperature=temperature, max_tokens=max_tokens, stop=stop, key=key
            )
        h = request_hash(
            self.name, messages, temperature=temperature, max_tokens=max_tokens, stop=stop, key=key
        )
        previous = self.calls.lookup(h)
        if previous is not None:
            return self._replayed(previous)
        self._check_fits(messages, max_tokens)
        self.costs.check(self.problem_id)
        with self.limit.slot():
            completion = self.inner.complete(
                messages,
                temperature=temperature,
                max_tokens=max_tokens,
                stop=stop,
                key=key,
                stage=self.stage,
            )
        completion.text = clean_text(completion.text)
        self.costs.add(self.problem_id, self.stage, completion.cost_usd)
        self._log(
            h,
            messages,
            completion,
            temperature=temperature,
            max_tokens=max_tokens,
            stop=stop,
            key=key,
        )
        return completion

    def _replayed(self, previous: dict[str, Any]) -> Completion:
        """The answer of a call an earlier invocation made, from the log: not paid again."""
        return Completion(
            text=previous["text"],
            usage=Usage.model_validate(previous.get("usage") or {}),
            cost_usd=float(previous.get("cost_usd", 0.0)),
            seconds=0.0,
            model=self.name,
            cached=True,
            cut=bool(previous.get("cut")),
        )

    def _log(
        self,
        h: str,
        messages: list[Message],
        completion: Completion,
        *,
        temperature: float,
        max_tokens: int,
        stop: list[str] | None,
        key: str,
    ) -> None:
        """Append the call to ``calls.jsonl`` (and its prompt to the prompt log)."""
        self.calls.append(
            {
                "ts": time.time(),
                "problem": self.problem_id,
                "stage": self.stage,
                "model": self.name,
                "temperature": temperature,
                "max_tokens": max_tokens,
                "key": key,
                "request_hash": h,
                "replay_hash": request_hash(
                    "", messages, temperature=temperature, max_tokens=max_tokens, stop=stop, key=key
                ),
                "usage": completion.usage.model_dump(),
                "cost_usd": completion.cost_usd,
                "seconds": round(completion.seconds, 3),
                "text": completion.text,
                "cut": completion.cut,
            }
        )
        if self.record_prompts:
            self.calls.store.append_prompt(
                self.problem_id,
                {
                    "request_hash": h,
                    "stage": self.stage,
                    "messages": [m.model_dump() for m in messages],
                },
            )


def request_tokens(messages: list[Message], max_tokens: int) -> int:
    """Estimated tokens of one request: the prompt (offline estimate, errs high) plus the
    output it may produce."""
    return sum(count_tokens(m.content) + 4 for m in messages) + max_tokens


def replay_costs(calls: CallLog, costs: CostTracker) -> None:
    """Count the spend of calls already in the log (a resumed run) against the caps."""
    for problem, stage, cost in calls.spend():
        costs.add(problem, stage, cost)
