"""The selection state machine: the model tells the top candidates apart and chooses.

States (``SelectionMachine``, one method each): ``ask`` (send the conversation) ->
``read_reply`` -> ``run_test`` (a ``<test>``: run it on the original + each candidate, show
the outputs) -> ``ask`` | ``correct`` (an unknown id or no block) -> ``ask`` | ``done`` (a
valid ``<choice>``, or a fallback).

Every reply costs one of ``selection.attempts``. Anything that ends without a valid choice
falls back to the top-voted candidate, and the record says why (``fallback_kind``):

- ``invalid-id`` / ``misparse`` / ``answer-cut``: the last reply named an unknown id / had
  no usable block / was cut at ``selection.max_output_tokens`` (never parsed);
- ``attempts-exhausted``: the model kept writing tests until the attempts ran out;
- ``model-error`` / ``budget``: the provider failed for good, or a cost cap was reached
  (both retried by the next run);
- ``context-length``: the conversation outgrew the model's context window (final).

A user interrupt (``Interrupted``) is re-raised so the stage is re-run on resume instead of
keeping a degraded choice.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, Field

from codemonkeys.candidates import Candidate
from codemonkeys.config import SelectionConfig
from codemonkeys.errors import BudgetExceeded, Interrupted
from codemonkeys.execution import Script
from codemonkeys.llm.base import ContextLengthExceeded, Message, Model, ModelError
from codemonkeys.llm.tags import last_block
from codemonkeys.prompts import PromptTemplates
from codemonkeys.selection.matrix import ORIGINAL, Cell


class SelectorTest(BaseModel):
    """A test the selector wrote and what it did on each row (``original`` + candidates)."""

    script: Script
    runs: dict[str, Cell] = Field(default_factory=dict)


class SelectorOutcome(BaseModel):
    chosen_id: str
    reason: str
    fallback: bool = False
    fallback_kind: str | None = None
    attempts: int = 0
    transcript: list[Message] = Field(default_factory=list)
    tests: list[SelectorTest] = Field(default_factory=list)
    corrections: list[str] = Field(default_factory=list)
    """Why each corrected reply could not be used (invalid-id, misparse, answer-cut), in
    order."""


@dataclass
class ShownCandidate:
    """What the selector sees of a candidate: its diff and the test evidence, never who
    proposed it."""

    id: str
    patch: str
    votes: int
    regressions: int | None = None
    """Existing repository tests it breaks (None: not measured)."""
    broken_tests: list[str] = field(default_factory=list)


@dataclass
class ShownFile:
    path: str
    content: str | None
    truncated: bool = False


# -- reply parsing -------------------------------------------------------------------------
@dataclass
class Reply:
    kind: str  # "test" | "choice" | "none" | "cut" (stopped at the output limit: not parsed)
    body: str = ""


def parse_reply(text: str) -> Reply:
    """Whichever counting block (``llm.tags`` rules: last complete block, anchored
    preferred, code fences stripped, an unclosed final ``<test>`` accepted) comes last."""
    test = last_block(text, "test")
    choice = last_block(text, "choice", allow_unclosed=False)
    if test is None and choice is None:
        return Reply("none")
    if choice is not None and (test is None or choice.start > test.start):
        return Reply("choice", choice.content.strip().strip("`'\"").strip())
    assert test is not None
    return Reply("test", test.content)


# -- the state machine ---------------------------------------------------------------------
MAX_BROKEN_SHOWN = 10
"""Per candidate, how many broken test names the selector's prompt lists."""

RunTest = Callable[[Script], dict[str, Cell]]
"""Runs a selector-written script on the original code and each top candidate."""

_NO_CHOICE = ("attempts-exhausted", "no choice within the attempt limit")
"""Why a conversation whose attempts ran out without a choice fell back."""

Language = Literal["python", "shell"]
"""What a selector-written test is (``Script.language``)."""
State = Literal["ask", "read_reply", "run_test", "correct", "done"]
"""The selection machine's states; each but ``done`` is the method of that name, which
returns the next state."""


def run_selector(
    *,
    issue: str,
    candidates: Sequence[Candidate],
    votes: dict[str, int],
    files: Sequence[ShownFile],
    regressions: dict[str, list[str] | None] | None = None,
    example_test: Script | None,
    example_results: dict[str, Cell] | None,
    model: Model,
    run_test: RunTest,
    config: SelectionConfig,
    templates: PromptTemplates,
    language: Language = "python",
    key: str = "",
) -> SelectorOutcome:
    """Ask the model to choose among ``candidates`` (best-voted first), with the prompts
    of ``templates``."""
    if not candidates:
        raise ValueError("run_selector needs at least one candidate")
    if len(candidates) == 1:
        return only_candidate(candidates[0])
    shown = shown_candidates(candidates, votes, regressions)
    initial = templates.render(
        "selection/initial",
        issue=issue,
        files=list(files),
        example_test=example_test.content if example_test else "",
        example_results=[
            {"row": r, "verdict": c.verdict} for r, c in (example_results or {}).items()
        ],
        candidates=shown,
        regressions_measured=regressions is not None,
        attempts=config.attempts,
        ids=[c.id for c in candidates],
    )
    machine = SelectionMachine(
        candidates=candidates,
        initial_prompt=initial,
        model=model,
        run_test=run_test,
        config=config,
        templates=templates,
        language=language,
        key=key,
    )
    return machine.run()


def only_candidate(candidate: Candidate) -> SelectorOutcome:
    """A single candidate is chosen without a model call."""
    return SelectorOutcome(
        chosen_id=candidate.id, reason="only one candidate: chosen without a model call"
    )


def shown_candidates(
    candidates: Sequence[Candidate],
    votes: dict[str, int],
    regressions: dict[str, list[str] | None] | None,
) -> list[ShownCandidate]:
    """What the selector's first prompt shows of each candidate."""
    broken = regressions or {}
    return [
        ShownCandidate(
            c.id,
            c.patch,
            votes.get(c.id, 0),
            None if broken.get(c.id) is None else len(broken[c.id] or []),
            list(broken.get(c.id) or [])[:MAX_BROKEN_SHOWN],
        )
        for c in candidates
    ]


class SelectionMachine:
    """One selector conversation: ``ask`` the model, ``read_reply``, then ``run_test`` (its
    results go back to the model) or ``correct`` (an unknown id or no block), and ``ask``
    again, until a valid choice or the attempts run out (``done``, with ``outcome`` set)."""

    def __init__(
        self,
        *,
        candidates: Sequence[Candidate],
        initial_prompt: str,
        model: Model,
        run_test: RunTest,
        config: SelectionConfig,
        templates: PromptTemplates,
        language: Language,
        key: str,
    ):
        self.top = candidates[0].id
        self.ids = [c.id for c in candidates]
        self.model, self.run_script, self.config = model, run_test, config
        self.language, self.key, self.templates = language, key, templates
        self.transcript = [
            Message(role="system", content=templates.render("selection/system", language=language)),
            Message(role="user", content=initial_prompt, cache=True),
        ]
        self.tests: list[SelectorTest] = []
        self.corrections: list[str] = []
        self.attempt = 0
        self.reply = Reply("none")
        self.problem = _NO_CHOICE
        """(fallback kind, why) if the attempts run out now."""
        self.note = ""
        """What the correction tells the model about its last reply."""
        self.outcome: SelectorOutcome | None = None

    @property
    def remaining(self) -> int:
        return self.config.attempts - self.attempt

    def run(self) -> SelectorOutcome:
        states: dict[State, Callable[[], State]] = {
            "ask": self.ask,
            "read_reply": self.read_reply,
            "run_test": self.run_test,
            "correct": self.correct,
        }
        state: State = "ask"
        while state != "done":
            state = states[state]()
        assert self.outcome is not None
        return self.outcome

    # -- states ------------------------------------------------------------------------
    def ask(self) -> State:
        """Send the conversation; the reply costs one attempt. A provider failure, a cost
        cap or an outgrown context window ends the conversation (an interrupt propagates)."""
        self.attempt += 1
        try:
            completion = self.model.complete(
                self.transcript,
                temperature=self.config.temperature,
                max_tokens=self.config.max_output_tokens,
                key=f"{self.key}selection",
            )
        except Interrupted:
            raise
        except BudgetExceeded as e:
            return self.fall_back("budget", f"cost cap reached ({e})", self.attempt - 1)
        except ContextLengthExceeded as e:
            why = f"context window exceeded ({e})"
            return self.fall_back("context-length", why, self.attempt - 1)
        except ModelError as e:
            return self.fall_back("model-error", f"model error ({e})", self.attempt - 1)
        self.transcript.append(
            Message(role="assistant", content=completion.text, cut=completion.cut)
        )
        self.reply = Reply("cut") if completion.cut else parse_reply(completion.text)
        return "read_reply"

    def read_reply(self) -> State:
        """A valid choice ends the conversation; a test is run; anything else is corrected."""
        reply = self.reply
        if reply.kind == "cut":
            limit = self.config.max_output_tokens
            self.problem = ("answer-cut", f"the last reply was cut at the output limit ({limit})")
            self.note = (
                f"Your reply was cut off at the {limit}-token limit before it ended, so nothing "
                "in it was used. Reply shorter."
            )
            return "correct"
        if reply.kind == "choice" and reply.body in self.ids:
            return self.choose(reply.body)
        if reply.kind == "choice":
            self.problem = ("invalid-id", f"the last reply chose an unknown id {reply.body!r}")
            self.note = f"{reply.body!r} is not one of the candidate ids."
            return "correct"
        if reply.kind == "test" and reply.body.strip():
            return "run_test"
        self.problem = ("misparse", "the last reply had neither a <test> nor a <choice> block")
        self.note = (
            "I could not find a <test>...</test> or <choice>...</choice> block in your reply."
        )
        return "correct"

    def run_test(self) -> State:
        """Run the model's test on the original code and every candidate and show it the
        outputs (unless that was its last attempt)."""
        script = Script(content=self.reply.body, language=self.language)
        runs = self.run_script(script)
        self.tests.append(SelectorTest(script=script, runs=runs))
        self.problem = _NO_CHOICE
        if self.remaining <= 0:
            return self.give_up()
        limit = self.config.max_output_chars_shown
        results = self.templates.render(
            "selection/test_results",
            runs=[_shown_run(row, cell, limit) for row, cell in runs.items()],
            remaining=self.remaining,
            ids=self.ids,
        )
        self.transcript.append(Message(role="user", content=results))
        return "ask"

    def correct(self) -> State:
        """Tell the model what was wrong with its reply (unless that was its last attempt)."""
        self.corrections.append(self.problem[0])
        if self.remaining <= 0:
            return self.give_up()
        correction = self.templates.render(
            "selection/correction",
            problem=self.note,
            ids=self.ids,
            language=self.language,
            remaining=self.remaining,
        )
        self.transcript.append(Message(role="user", content=correction))
        return "ask"

    # -- endings -----------------------------------------------------------------------
    def choose(self, chosen_id: str) -> State:
        replies = f"{self.attempt} repl{'y' if self.attempt == 1 else 'ies'}"
        self.outcome = SelectorOutcome(
            chosen_id=chosen_id,
            reason=f"chosen by the selector after {replies} and {len(self.tests)} test(s)",
            attempts=self.attempt,
            transcript=self.transcript,
            tests=self.tests,
            corrections=self.corrections,
        )
        return "done"

    def give_up(self) -> State:
        """The attempts ran out: the last reply's problem says why."""
        return self.fall_back(*self.problem, self.config.attempts)

    def fall_back(self, kind: str, why: str, attempts: int) -> State:
        self.outcome = SelectorOutcome(
            chosen_id=self.top,
            reason=f"fell back to the top-voted candidate: {why}",
            fallback=True,
            fallback_kind=kind,
            attempts=attempts,
            transcript=self.transcript,
            tests=self.tests,
            corrections=self.corrections,
        )
        return "done"


def _shown_run(row: str, cell: Cell, limit: int) -> dict[str, object]:
    out = cell.output_tail
    if len(out) > limit:
        out = "[... output cut ...]\n" + out[-limit:]
    return {
        "row": "original code" if row == ORIGINAL else row,
        "verdict": cell.verdict,
        "exit_code": cell.exit_code,
        "output": out,
    }
