"""The testing state machine: write a reproduction script from the issue alone, run it on
the original code, approve it (``<done>``) or rewrite it, up to ``test_attempts`` model
calls. A misparse costs an attempt and gets a correction message.

Each step appends to ``rec.test_messages`` and saves, so a resumed trajectory looks at the
last message: a user message means "call the model", an assistant message means "act on
this answer".
"""

from __future__ import annotations

from codemonkeys.execution import Script
from codemonkeys.generation.records import TestVersion, TrajectoryRecord
from codemonkeys.generation.runtime import GenerationRuntime
from codemonkeys.generation.tags import parse_answer
from codemonkeys.llm.base import Message
from codemonkeys.problem import Problem
from codemonkeys.prompts import render

LANGUAGE_NAMES = {"python": "Python", "shell": "bash shell"}


def testing_prefix(problem: Problem, language: str) -> list[Message]:
    """System prompt + issue: shared by every trajectory of the problem (cached prefix)."""
    name = LANGUAGE_NAMES[language]
    return [
        Message(role="system", content=render("generation/test_system", language_name=name)),
        Message(
            role="user",
            content=render("generation/test_request", issue=problem.issue, language_name=name),
            cache=True,
        ),
    ]


def _attempts_left(rt: GenerationRuntime, rec: TrajectoryRecord) -> int:
    return rt.gen.test_attempts - rec.test_attempts


def _finish_testing(rec: TrajectoryRecord) -> None:
    if rec.current_test is None:
        rec.state = "finished"
        rec.status = "no_test"
        rec.error = "no usable reproduction script within the attempt limit"
    else:
        rec.state = "editing"


def _correct(rt: GenerationRuntime, rec: TrajectoryRecord, kind: str, details: str = "") -> None:
    rec.corrections.append(kind)
    rec.test_messages.append(
        Message(
            role="user",
            content=render(
                "generation/correction",
                kind=kind,
                details=details,
                stage="tests",
                attempts_left=_attempts_left(rt, rec),
            ),
        )
    )


def step_testing(rt: GenerationRuntime, rec: TrajectoryRecord, prefix: list[Message]) -> None:
    """Advance the testing state machine by one step (a model call or acting on its answer)."""
    msgs = rec.test_messages
    if not msgs or msgs[-1].role == "user":
        if rec.test_attempts >= rt.gen.test_attempts:
            _finish_testing(rec)
            return
        completion = rt.complete(rec, "tests", prefix, msgs)
        rec.test_attempts += 1
        msgs.append(Message(role="assistant", content=completion.text))
        return
    parsed = parse_answer(msgs[-1].content, allow=("test", "done"))
    exhausted = rec.test_attempts >= rt.gen.test_attempts
    if parsed.error:
        if exhausted:
            _finish_testing(rec)
        else:
            _correct(rt, rec, parsed.error, "; ".join(parsed.notes))
        return
    if parsed.done:
        if rec.current_test is None:
            if exhausted:
                _finish_testing(rec)
            else:
                _correct(rt, rec, "done_without_test")
            return
        rec.test_approved = True
        _finish_testing(rec)
        return
    assert parsed.test is not None
    script = Script(content=parsed.test.rstrip("\n") + "\n", language=rec.language)
    run = rt.run_script(rec, None, script)
    rec.tests.append(
        TestVersion(script=script, original=run, phase="testing", attempt=rec.test_attempts)
    )
    rec.current_test = len(rec.tests) - 1
    if exhausted:
        _finish_testing(rec)  # the last script is used unapproved
        return
    msgs.append(
        Message(
            role="user",
            content=render(
                "generation/test_feedback",
                run=run,
                timeout=_fmt_timeout(rt.timeout),
                attempts_left=_attempts_left(rt, rec),
            ),
        )
    )


def _fmt_timeout(seconds: float) -> str:
    return f"{seconds:g}"


def run_testing(rt: GenerationRuntime, rec: TrajectoryRecord, prefix: list[Message]) -> None:
    while rec.state == "testing":
        step_testing(rt, rec, prefix)
        rt.save(rec)
