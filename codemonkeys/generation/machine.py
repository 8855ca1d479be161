"""What the testing and editing state machines share.

Each machine is one conversation of a trajectory. Its state is not stored separately: it
follows from the record (who spoke last), so a record saved after any step resumes exactly
there. Each state is a named method; ``step`` runs the one the record is in:

- ``ask_model``: the last message is ours (or there is none yet): call the model, or
  finish when the attempts are used up;
- ``read_answer``: the last message is the model's: act on it, which ends with a message
  for the model (feedback or a correction) or with the machine finishing.

A misparse, ``<done>`` with nothing to approve, or an answer cut at the output token limit
(``Message.cut``: never parsed, whatever it holds) costs an attempt and gets a correction.
Subclasses say what a revision does (``revise``) and how the machine ends (``finish``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import ClassVar, Literal

from codemonkeys.execution import Script, TestRun
from codemonkeys.generation.records import TestVersion, TrajectoryRecord
from codemonkeys.generation.runtime import GenerationRuntime
from codemonkeys.llm.base import Message
from codemonkeys.llm.tags import Parsed, parse_answer

State = Callable[[], None]


class StateMachine(ABC):
    """One conversation of ``rec`` after its shared ``prefix``, advanced one saved step at
    a time."""

    phase: ClassVar[Literal["testing", "editing"]]
    """The record's ``state`` while this machine runs."""
    cost_stage: ClassVar[Literal["tests", "edits"]]
    """Which model answers, and where usage and cost are counted."""
    answer_tags: ClassVar[tuple[str, ...]]
    nothing_to_approve: ClassVar[str]
    """The correction sent when the model says ``<done>`` before it wrote anything."""

    def __init__(self, rt: GenerationRuntime, rec: TrajectoryRecord, prefix: list[Message]):
        self.rt = rt
        self.rec = rec
        self.prefix = prefix

    # -- the record's view of this conversation (per machine) ----------------------------
    @property
    @abstractmethod
    def messages(self) -> list[Message]: ...

    @property
    @abstractmethod
    def attempts(self) -> int:
        """Model calls made so far."""
        ...

    @abstractmethod
    def count_attempt(self) -> None: ...

    @property
    @abstractmethod
    def max_attempts(self) -> int: ...

    @abstractmethod
    def has_result(self) -> bool:
        """Whether there is something for ``<done>`` to approve."""
        ...

    # -- transitions (per machine) -------------------------------------------------------
    @abstractmethod
    def revise(self, parsed: Parsed) -> None:
        """Act on an answer carrying a new test and/or edit."""
        ...

    @abstractmethod
    def finish(self, approved: bool) -> None:
        """Leave this machine: approved by ``<done>``, or out of attempts."""
        ...

    # -- running -------------------------------------------------------------------------
    def state(self) -> State:
        """The state the record is in."""
        msgs = self.messages
        if msgs and msgs[-1].role == "assistant":
            return self.read_answer
        return self.ask_model

    def step(self) -> None:
        self.state()()

    def run(self) -> None:
        """Step until the machine finishes, saving the record after every step."""
        while self.rec.state == self.phase:
            self.step()
            self.rt.save(self.rec)

    # -- shared states -------------------------------------------------------------------
    def ask_model(self) -> None:
        if self.exhausted:
            self.finish(approved=False)
            return
        completion = self.rt.complete(self.rec, self.cost_stage, self.prefix, self.messages)
        self.count_attempt()
        self.messages.append(Message(role="assistant", content=completion.text, cut=completion.cut))

    def read_answer(self) -> None:
        answer = self.messages[-1]
        if answer.cut:
            limit = self.rt.max_output_tokens(self.cost_stage)
            self.correct_or_finish("answer_cut", str(limit))
            return
        parsed = parse_answer(answer.content, allow=self.answer_tags)
        if parsed.error:
            self.correct_or_finish(parsed.error, "; ".join(parsed.notes))
        elif parsed.done and not self.has_result():
            self.correct_or_finish(self.nothing_to_approve)
        elif parsed.done:
            self.finish(approved=True)
        else:
            self.revise(parsed)

    # -- helpers -------------------------------------------------------------------------
    @property
    def exhausted(self) -> bool:
        return self.attempts >= self.max_attempts

    @property
    def attempts_left(self) -> int:
        return self.max_attempts - self.attempts

    @property
    def timeout(self) -> str:
        """The script timeout as the prompts show it."""
        return f"{self.rt.timeout:g}"

    def unusable_answers(self) -> str:
        """The corrections sent so far, counted by kind ("answer_cut x2, no_tags x1")."""
        counts: dict[str, int] = {}
        for kind in self.rec.corrections:
            counts[kind] = counts.get(kind, 0) + 1
        return ", ".join(f"{kind} x{n}" for kind, n in counts.items())

    def say(self, content: str) -> None:
        self.messages.append(Message(role="user", content=content))

    def correct_or_finish(self, kind: str, details: str = "") -> None:
        """A correction for an unusable answer, or the end when no attempt is left (the
        answer's kind is recorded either way)."""
        self.rec.corrections.append(kind)
        if self.exhausted:
            self.finish(approved=False)
            return
        self.say(
            self.rt.templates.render(
                "generation/correction",
                kind=kind,
                details=details,
                stage=self.cost_stage,
                attempts_left=self.attempts_left,
            )
        )

    def script(self, text: str) -> Script:
        """The model's test text as a script in the trajectory's language."""
        return Script(content=text.rstrip("\n") + "\n", language=self.rec.language)

    def add_test(self, script: Script) -> TestRun:
        """Run ``script`` on the original code and make it the current test."""
        original = self.rt.run_script(self.rec, None, script)
        self.rec.tests.append(
            TestVersion(script=script, original=original, phase=self.phase, attempt=self.attempts)
        )
        self.rec.current_test = len(self.rec.tests) - 1
        return original
