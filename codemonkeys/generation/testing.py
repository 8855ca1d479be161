"""The testing state machine: write a reproduction script from the issue alone, run it on
the original code, approve it (``<done>``) or rewrite it, up to ``test_attempts`` model
calls. A misparse costs an attempt and gets a correction message.

Each step appends to ``rec.test_messages`` and saves, so a resumed trajectory looks at the
last message: a user message means "call the model" (``ask_model``), an assistant message
means "act on this answer" (``read_answer``); see ``machine.StateMachine``.
"""

from __future__ import annotations

from codemonkeys.generation.machine import StateMachine
from codemonkeys.generation.records import TrajectoryRecord
from codemonkeys.generation.runtime import GenerationRuntime
from codemonkeys.llm.base import Message
from codemonkeys.llm.tags import Parsed
from codemonkeys.problem import Problem
from codemonkeys.prompts import PromptTemplates

LANGUAGE_NAMES = {"python": "Python", "shell": "bash shell"}


def testing_prefix(templates: PromptTemplates, problem: Problem, language: str) -> list[Message]:
    """System prompt + issue: shared by every trajectory of the problem (cached prefix)."""
    name = LANGUAGE_NAMES[language]
    return [
        Message(
            role="system", content=templates.render("generation/test_system", language_name=name)
        ),
        Message(
            role="user",
            content=templates.render(
                "generation/test_request", issue=problem.issue, language_name=name
            ),
            cache=True,
        ),
    ]


class TestingMachine(StateMachine):
    """The conversation that writes the trajectory's reproduction script."""

    __test__ = False  # not a pytest test class
    phase = "testing"
    cost_stage = "tests"
    answer_tags = ("test", "done")
    nothing_to_approve = "done_without_test"

    def __init__(self, rt: GenerationRuntime, rec: TrajectoryRecord):
        super().__init__(rt, rec, testing_prefix(rt.templates, rt.problem, rec.language))

    @property
    def messages(self) -> list[Message]:
        return self.rec.test_messages

    @property
    def attempts(self) -> int:
        return self.rec.test_attempts

    def count_attempt(self) -> None:
        self.rec.test_attempts += 1

    @property
    def max_attempts(self) -> int:
        return self.rt.gen.test_attempts

    def has_result(self) -> bool:
        return self.rec.current_test is not None

    def revise(self, parsed: Parsed) -> None:
        """A new script: run it on the original code and show the model the output."""
        assert parsed.test is not None
        run = self.add_test(self.script(parsed.test))
        if self.exhausted:
            self.finish(approved=False)  # the last script is used unapproved
            return
        self.say(
            self.rt.templates.render(
                "generation/test_feedback",
                run=run,
                timeout=self.timeout,
                attempts_left=self.attempts_left,
            )
        )

    def finish(self, approved: bool) -> None:
        """On to editing with the last script, or end the trajectory without one."""
        if approved:
            self.rec.test_approved = True
        if self.rec.current_test is None:
            self.rec.state = "finished"
            self.rec.status = "no_test"
            unusable = self.unusable_answers()
            self.rec.error = "no usable reproduction script within the attempt limit" + (
                f" (answers not used: {unusable})" if unusable else ""
            )
        else:
            self.rec.state = "editing"


def run_testing(rt: GenerationRuntime, rec: TrajectoryRecord) -> None:
    """Run (or resume) the testing state machine of ``rec`` until it finishes."""
    TestingMachine(rt, rec).run()
