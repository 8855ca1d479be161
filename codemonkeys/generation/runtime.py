"""What the trajectories of one problem share while they run: the models, the execution
cache, the original file contents, the prompt-cache warm-up gates and a stop flag.

Warm-up: providers cache a prompt prefix only after a call with it has *completed*. Ten
trajectories sending the same 100k-token prefix at once would all pay the cache-write
price. So the first call for each prefix goes alone; the others wait on its Event (and
are released even when that call fails).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager

from codemonkeys.config import Config
from codemonkeys.errors import BudgetExceeded
from codemonkeys.execution import ExecutionCache, Script, TestRun
from codemonkeys.generation.edits import EditError
from codemonkeys.generation.records import TrajectoryRecord
from codemonkeys.llm.base import Completion, Message, Usage
from codemonkeys.llm.recording import RecordingModel
from codemonkeys.original_files import OriginalBytes
from codemonkeys.problem import Problem

log = logging.getLogger(__name__)

EventCallback = Callable[..., None]


def prefix_digest(messages: list[Message]) -> str:
    """Hash of the messages up to and including the last one marked ``cache``."""
    last = max((i for i, m in enumerate(messages) if m.cache), default=-1)
    h = hashlib.sha256()
    for m in messages[: last + 1]:
        h.update(m.role.encode() + b"\0" + m.content.encode() + b"\0")
    return h.hexdigest()[:16]


class PrefixWarmer:
    """Per-problem gates, one per shared prefix: the first caller goes, the rest wait."""

    def __init__(self, enabled: bool = True, min_chars: int = 0):
        self.enabled = enabled
        self.min_chars = min_chars
        self._lock = threading.Lock()
        self._events: dict[str, threading.Event] = {}

    @contextmanager
    def gate(self, messages: list[Message]) -> Iterator[float]:
        """Yields the seconds spent waiting for another trajectory's warm-up call."""
        last = max((i for i, m in enumerate(messages) if m.cache), default=-1)
        size = sum(len(m.content) for m in messages[: last + 1])
        if not self.enabled or last < 0 or size < self.min_chars:
            yield 0.0
            return
        key = prefix_digest(messages)
        with self._lock:
            event = self._events.get(key)
            leader = event is None
            if leader:
                event = threading.Event()
                self._events[key] = event
        assert event is not None
        if leader:
            try:
                yield 0.0
            finally:
                event.set()  # success or failure: never leave the others waiting
            return
        start = time.monotonic()
        event.wait()
        yield time.monotonic() - start


class OriginalFiles(OriginalBytes):
    """The base-commit files decoded as text, for the edit format."""

    def read(self, path: str) -> str | None:
        data = self.read_bytes(path)
        if data is None:
            return None
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise EditError([f"{path} is not a UTF-8 text file; it cannot be edited."]) from None


class GenerationRuntime:
    """Everything one problem's trajectories share."""

    def __init__(
        self,
        *,
        problem: Problem,
        config: Config,
        test_model: RecordingModel,
        edit_model: RecordingModel,
        cache: ExecutionCache,
        files: OriginalFiles,
        warmer: PrefixWarmer,
        context_text: str = "",
        save: Callable[[TrajectoryRecord], None] | None = None,
        on_event: EventCallback | None = None,
        exec_workers: int = 4,
    ):
        self.problem = problem
        self.config = config
        self.gen = config.generation
        self.templates = config.prompt_templates()
        """The prompt templates this problem's conversations render (``prompts.dir``)."""
        self.test_model = test_model
        self.edit_model = edit_model
        self.cache = cache
        self.files = files
        self.warmer = warmer
        self.context_text = context_text
        self._save = save
        self._on_event = on_event
        self.stop = threading.Event()
        self.stop_reason: BaseException | None = None
        self._exec = ThreadPoolExecutor(
            max_workers=max(2, exec_workers), thread_name_prefix="gen-exec"
        )

    @property
    def timeout(self) -> float:
        return self.config.sandbox.script_timeout_s

    def max_output_tokens(self, stage: str) -> int:
        """The output budget of one answer of a cost stage ("tests" or "edits")."""
        if stage == "tests":
            return self.gen.test_max_output_tokens
        return self.gen.edit_max_output_tokens

    def close(self) -> None:
        self._exec.shutdown(wait=True)

    def save(self, rec: TrajectoryRecord) -> None:
        if self._save is not None:
            self._save(rec)

    def event(self, kind: str, **info: object) -> None:
        if self._on_event is None:
            return
        try:
            self._on_event(kind, problem_id=self.problem.id, **info)
        except Exception:  # a display problem never stops generation
            log.exception("on_event callback failed")

    def check_stop(self) -> None:
        if self.stop.is_set():
            reason = self.stop_reason
            if isinstance(reason, BudgetExceeded):
                raise type(reason)(str(reason))
            raise BudgetExceeded(str(reason) if reason else "generation stopped")

    def request_stop(self, reason: BaseException) -> None:
        if not self.stop.is_set():
            self.stop_reason = reason
            self.stop.set()

    # -- model --------------------------------------------------------------------------
    def complete(
        self, rec: TrajectoryRecord, stage: str, prefix: list[Message], messages: list[Message]
    ) -> Completion:
        """One model call of a trajectory, behind the warm-up gate of its prefix; usage and
        timing are added to the record."""
        self.check_stop()
        model = self.test_model if stage == "tests" else self.edit_model
        full = prefix + messages
        with self.warmer.gate(full) as waited:
            self.check_stop()
            t0 = time.monotonic()
            completion = model.complete(
                full,
                temperature=rec.temperature,
                max_tokens=self.max_output_tokens(stage),
                key=f"traj-{rec.index}",
            )
            rec.timing.model_s += time.monotonic() - t0
        rec.timing.wait_s += waited
        rec.usage[stage] = rec.usage.get(stage, Usage()) + completion.usage
        rec.cost_usd[stage] = rec.cost_usd.get(stage, 0.0) + completion.cost_usd
        rec.calls += 1
        return completion

    # -- execution ----------------------------------------------------------------------
    def run_script(self, rec: TrajectoryRecord, patch: str | None, script: Script) -> TestRun:
        t0 = time.monotonic()
        result = self.cache.run(patch, script)
        rec.timing.exec_s += time.monotonic() - t0
        return result

    def run_pair(
        self, rec: TrajectoryRecord, patch: str, script: Script
    ) -> tuple[TestRun, TestRun]:
        """The script on the original and on the edited code, at the same time."""
        t0 = time.monotonic()
        fut_orig: Future[TestRun] = self._exec.submit(self.cache.run, None, script)
        edited = self.cache.run(patch, script)
        original = fut_orig.result()
        rec.timing.exec_s += time.monotonic() - t0
        return original, edited
