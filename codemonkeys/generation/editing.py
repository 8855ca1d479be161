"""The editing state machine: starting from the trajectory's test and its output on the
original code, with the packed context in the cached prefix, the model writes an edit; the
test runs on the original and the edited code at the same time; the model sees the diff
and both outputs and approves (``<done>``), rewrites the edit (always relative to the
original code) and/or rewrites the test. Up to ``edit_attempts`` model calls; a misparse or
an edit that does not apply costs an attempt and gets a precise correction.

States (see ``machine.StateMachine``): ``write_request`` (no message yet: the test and its
output on the original), ``ask_model``, ``read_answer``; a revision takes the new test
(``take_test``) and edit (``take_edit``), then either reports why the edit does not apply
(``report_edit_errors``) or runs the pair and reports both outputs (``run_and_report``).
"""

from __future__ import annotations

from codemonkeys.execution import TestRun
from codemonkeys.generation.edits import EditError, edit_to_patch
from codemonkeys.generation.machine import State, StateMachine
from codemonkeys.generation.records import (
    EditVersion,
    PairOutcome,
    TestVersion,
    TrajectoryRecord,
)
from codemonkeys.generation.runtime import GenerationRuntime
from codemonkeys.llm.base import Message
from codemonkeys.llm.tags import Parsed
from codemonkeys.problem import Problem
from codemonkeys.prompts import PromptTemplates


def editing_prefix(
    templates: PromptTemplates, problem: Problem, context_text: str
) -> list[Message]:
    """System prompt + packed context + issue: the big prefix every trajectory shares."""
    return [
        Message(role="system", content=templates.render("generation/edit_system")),
        Message(
            role="user",
            content=templates.render(
                "generation/edit_context", issue=problem.issue, context=context_text
            ),
            cache=True,
        ),
    ]


class EditingMachine(StateMachine):
    """The conversation that writes, tests and revises the trajectory's edit."""

    phase = "editing"
    cost_stage = "edits"
    answer_tags = ("edit", "test", "done")
    nothing_to_approve = "done_without_edit"

    def __init__(self, rt: GenerationRuntime, rec: TrajectoryRecord):
        super().__init__(rt, rec, editing_prefix(rt.templates, rt.problem, rt.context_text))

    @property
    def messages(self) -> list[Message]:
        return self.rec.edit_messages

    @property
    def attempts(self) -> int:
        return self.rec.edit_attempts

    def count_attempt(self) -> None:
        self.rec.edit_attempts += 1

    @property
    def max_attempts(self) -> int:
        return self.rt.gen.edit_attempts

    def has_result(self) -> bool:
        return self.rec.current_edit is not None

    @property
    def test_index(self) -> int:
        assert self.rec.current_test is not None  # editing starts from the testing's script
        return self.rec.current_test

    @property
    def test(self) -> TestVersion:
        return self.rec.tests[self.test_index]

    def state(self) -> State:
        if not self.messages:
            return self.write_request
        return super().state()

    # -- states --------------------------------------------------------------------------
    def write_request(self) -> None:
        """The first message after the prefix: the test and its output on the original."""
        self.say(
            self.rt.templates.render(
                "generation/edit_request",
                test=self.test.script.content,
                run=self.test.original,
                timeout=self.timeout,
            )
        )

    def revise(self, parsed: Parsed) -> None:
        new_test = parsed.test is not None and self.take_test(parsed.test)
        errors, notes = self.take_edit(parsed.edit) if parsed.edit is not None else ([], [])
        if errors:
            self.report_edit_errors(errors, new_test)
        else:
            self.run_and_report(new_test, notes)

    def finish(self, approved: bool) -> None:
        self.rec.state = "finished"
        self.rec.edit_approved = approved
        self.rec.status = "done" if approved else "exhausted"

    # -- a revision, step by step --------------------------------------------------------
    def take_test(self, text: str) -> bool:
        """Make ``text`` the current test unless it is the current one; True when new."""
        script = self.script(text)
        if self.rec.current_test is not None and script.digest == self.test.script.digest:
            return False
        self.add_test(script)
        return True

    def take_edit(self, text: str) -> tuple[list[str], list[str]]:
        """Record the edit; one that applies becomes the current edit. Returns why it does
        not apply (empty when it does) and the notes on how it was applied."""
        rec = self.rec
        try:
            result = edit_to_patch(text, self.rt.files.read)
        except EditError as e:
            rec.edits.append(EditVersion(text=text, errors=e.errors, attempt=rec.edit_attempts))
            return e.errors, []
        rec.edits.append(
            EditVersion(
                text=text,
                patch=result.patch,
                files=result.files,
                notes=result.notes,
                attempt=rec.edit_attempts,
            )
        )
        rec.current_edit = len(rec.edits) - 1
        return [], result.notes

    def report_edit_errors(self, errors: list[str], new_test: bool) -> None:
        self.rec.corrections.append("edit_error")
        if self.exhausted:
            self.finish(approved=False)
            return
        self.say(
            self.rt.templates.render(
                "generation/edit_error",
                errors=errors,
                new_test=new_test,
                run=self.test.original,
                timeout=self.timeout,
                attempts_left=self.attempts_left,
            )
        )

    def run_and_report(self, new_test: bool, notes: list[str]) -> None:
        """Run the current test on the original and the edited code, show both."""
        original, edited = self.run_pair()
        if self.exhausted:
            self.finish(approved=False)
            return
        self.say(
            self.rt.templates.render(
                "generation/edit_feedback",
                new_test=new_test,
                patch=self.rec.final_patch,
                notes=notes,
                original=original,
                edited=edited,
                timeout=self.timeout,
                attempts_left=self.attempts_left,
            )
        )

    def run_pair(self) -> tuple[TestRun, TestRun | None]:
        """The current test on the original and (with an edit) the edited code."""
        rec, test = self.rec, self.test
        if rec.current_edit is None:
            return test.original, None
        original, edited = self.rt.run_pair(rec, rec.final_patch, test.script)
        rec.pairs.append(
            PairOutcome(
                attempt=rec.edit_attempts,
                test=self.test_index,
                edit=rec.current_edit,
                original=original,
                edited=edited,
            )
        )
        return original, edited


def run_editing(rt: GenerationRuntime, rec: TrajectoryRecord) -> None:
    """Run (or resume) the editing state machine of ``rec`` until it finishes."""
    EditingMachine(rt, rec).run()
