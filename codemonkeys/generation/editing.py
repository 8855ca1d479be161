"""The editing state machine: starting from the trajectory's test and its output on the
original code, with the packed context in the cached prefix, the model writes an edit; the
test runs on the original and the edited code at the same time; the model sees the diff
and both outputs and approves (``<done>``), rewrites the edit (always relative to the
original code) and/or rewrites the test. Up to ``edit_attempts`` model calls; a misparse or
an edit that does not apply costs an attempt and gets a precise correction.
"""

from __future__ import annotations

from codemonkeys.execution import Script, TestRun
from codemonkeys.generation.edits import EditError, edit_to_patch
from codemonkeys.generation.records import EditVersion, PairOutcome, TestVersion, TrajectoryRecord
from codemonkeys.generation.runtime import GenerationRuntime
from codemonkeys.generation.tags import parse_answer
from codemonkeys.llm.base import Message
from codemonkeys.problem import Problem
from codemonkeys.prompts import render


def editing_prefix(problem: Problem, context_text: str) -> list[Message]:
    """System prompt + packed context + issue: the big prefix every trajectory shares."""
    return [
        Message(role="system", content=render("generation/edit_system")),
        Message(
            role="user",
            content=render("generation/edit_context", issue=problem.issue, context=context_text),
            cache=True,
        ),
    ]


def _left(rt: GenerationRuntime, rec: TrajectoryRecord) -> int:
    return rt.gen.edit_attempts - rec.edit_attempts


def _timeout(rt: GenerationRuntime) -> str:
    return f"{rt.timeout:g}"


def _finish(rec: TrajectoryRecord, approved: bool) -> None:
    rec.state = "finished"
    rec.edit_approved = approved
    rec.status = "done" if approved else "exhausted"


def _say(rec: TrajectoryRecord, content: str) -> None:
    rec.edit_messages.append(Message(role="user", content=content))


def _correct(rt: GenerationRuntime, rec: TrajectoryRecord, kind: str, details: str = "") -> None:
    rec.corrections.append(kind)
    _say(
        rec,
        render(
            "generation/correction",
            kind=kind,
            details=details,
            stage="edits",
            attempts_left=_left(rt, rec),
        ),
    )


def start_editing(rt: GenerationRuntime, rec: TrajectoryRecord) -> None:
    """The first user message after the prefix: the test and its output on the original."""
    test = rec.tests[rec.current_test] if rec.current_test is not None else None
    assert test is not None
    _say(
        rec,
        render(
            "generation/edit_request",
            test=test.script.content,
            run=test.original,
            timeout=_timeout(rt),
        ),
    )


def step_editing(rt: GenerationRuntime, rec: TrajectoryRecord, prefix: list[Message]) -> None:
    msgs = rec.edit_messages
    if not msgs:
        start_editing(rt, rec)
        return
    if msgs[-1].role == "user":
        if rec.edit_attempts >= rt.gen.edit_attempts:
            _finish(rec, approved=False)
            return
        completion = rt.complete(rec, "edits", prefix, msgs)
        rec.edit_attempts += 1
        msgs.append(Message(role="assistant", content=completion.text))
        return
    exhausted = rec.edit_attempts >= rt.gen.edit_attempts
    parsed = parse_answer(msgs[-1].content, allow=("edit", "test", "done"))
    if parsed.error:
        if exhausted:
            _finish(rec, approved=False)
        else:
            _correct(rt, rec, parsed.error, "; ".join(parsed.notes))
        return
    if parsed.done:
        if rec.current_edit is None:
            if exhausted:
                _finish(rec, approved=False)
            else:
                _correct(rt, rec, "done_without_edit")
            return
        _finish(rec, approved=True)
        return

    new_test = False
    if parsed.test is not None:
        script = Script(content=parsed.test.rstrip("\n") + "\n", language=rec.language)
        if rec.current_test is None or script.digest != rec.tests[rec.current_test].script.digest:
            original = rt.run_script(rec, None, script)
            rec.tests.append(
                TestVersion(
                    script=script, original=original, phase="editing", attempt=rec.edit_attempts
                )
            )
            rec.current_test = len(rec.tests) - 1
            new_test = True
    assert rec.current_test is not None
    test = rec.tests[rec.current_test]

    edit_errors: list[str] = []
    notes: list[str] = []
    if parsed.edit is not None:
        try:
            result = edit_to_patch(parsed.edit, rt.files.read)
        except EditError as e:
            edit_errors = e.errors
            rec.edits.append(
                EditVersion(text=parsed.edit, errors=e.errors, attempt=rec.edit_attempts)
            )
        else:
            notes = result.notes
            rec.edits.append(
                EditVersion(
                    text=parsed.edit,
                    patch=result.patch,
                    files=result.files,
                    notes=result.notes,
                    attempt=rec.edit_attempts,
                )
            )
            rec.current_edit = len(rec.edits) - 1

    if edit_errors:
        rec.corrections.append("edit_error")
        if exhausted:
            _finish(rec, approved=False)
            return
        _say(
            rec,
            render(
                "generation/edit_error",
                errors=edit_errors,
                new_test=new_test,
                run=test.original,
                timeout=_timeout(rt),
                attempts_left=_left(rt, rec),
            ),
        )
        return

    edited: TestRun | None = None
    patch = rec.final_patch
    if rec.current_edit is not None:
        original, edited = rt.run_pair(rec, patch, test.script)
        rec.pairs.append(
            PairOutcome(
                attempt=rec.edit_attempts,
                test=rec.current_test,
                edit=rec.current_edit,
                original=original,
                edited=edited,
            )
        )
    else:
        original = test.original
    if exhausted:
        _finish(rec, approved=False)
        return
    _say(
        rec,
        render(
            "generation/edit_feedback",
            new_test=new_test,
            patch=patch,
            notes=notes,
            original=original,
            edited=edited,
            timeout=_timeout(rt),
            attempts_left=_left(rt, rec),
        ),
    )


def run_editing(rt: GenerationRuntime, rec: TrajectoryRecord, prefix: list[Message]) -> None:
    while rec.state == "editing":
        step_editing(rt, rec, prefix)
        rt.save(rec)
