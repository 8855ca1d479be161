"""The selection state machine: the model tells the top candidates apart and chooses.

States: ``ask`` -> (``<test>`` -> run it on the original + each candidate -> show outputs
-> ``ask``) | (``<choice>`` valid -> done) | (misparse / invalid id -> correction -> ``ask``).
Every reply costs one of ``selection.attempts``. Anything that ends without a valid choice
falls back to the top-voted candidate, and the record says why (``fallback_kind``):

- ``invalid-id`` / ``misparse``: the last reply named an unknown id / had no usable block;
- ``attempts-exhausted``: the model kept writing tests until the attempts ran out;
- ``model-error`` / ``budget``: the provider failed for good, or a cost cap was reached
  (both retried by the next run);
- ``context-length``: the conversation outgrew the model's context window (final).

A user interrupt (``Interrupted``) is re-raised so the stage is re-run on resume instead of
keeping a degraded choice.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pydantic import BaseModel, Field

from codemonkeys.candidates import Candidate
from codemonkeys.config import SelectionConfig
from codemonkeys.execution import Script
from codemonkeys.generation.tags import last_block
from codemonkeys.llm.base import (
    BudgetExceeded,
    ContextLengthExceeded,
    Interrupted,
    Message,
    Model,
    ModelError,
)
from codemonkeys.prompts import render
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


@dataclass
class ShownCandidate:
    id: str
    patch: str
    votes: int
    sources: str


@dataclass
class ShownFile:
    path: str
    content: str | None
    truncated: bool = False


# -- reply parsing -------------------------------------------------------------------------
@dataclass
class Reply:
    kind: str  # "test" | "choice" | "none"
    body: str = ""


def parse_reply(text: str) -> Reply:
    """Whichever counting block (``generation.tags`` rules: last complete block, anchored
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
RunTest = Callable[[Script], dict[str, Cell]]
"""Runs a selector-written script on the original code and each top candidate."""


def run_selector(
    *,
    issue: str,
    candidates: Sequence[Candidate],
    votes: dict[str, int],
    files: Sequence[ShownFile],
    example_test: Script | None,
    example_results: dict[str, Cell] | None,
    model: Model,
    run_test: RunTest,
    config: SelectionConfig,
    language: str = "python",
    key: str = "",
) -> SelectorOutcome:
    """Ask the model to choose among ``candidates`` (best-voted first)."""
    if not candidates:
        raise ValueError("run_selector needs at least one candidate")
    top = candidates[0].id
    if len(candidates) == 1:
        return SelectorOutcome(
            chosen_id=top, reason="only one candidate: chosen without a model call"
        )
    ids = [c.id for c in candidates]
    shown = [
        ShownCandidate(c.id, c.patch, votes.get(c.id, 0), ", ".join(c.sources)) for c in candidates
    ]
    transcript = [
        Message(role="system", content=render("selection/system", language=language)),
        Message(
            role="user",
            content=render(
                "selection/initial",
                issue=issue,
                files=list(files),
                example_test=example_test.content if example_test else "",
                example_results=[
                    {"row": r, "verdict": c.verdict} for r, c in (example_results or {}).items()
                ],
                candidates=shown,
                attempts=config.attempts,
                ids=ids,
            ),
            cache=True,
        ),
    ]
    tests: list[SelectorTest] = []

    def fallback(kind: str, why: str, attempts: int) -> SelectorOutcome:
        return SelectorOutcome(
            chosen_id=top,
            reason=f"fell back to the top-voted candidate: {why}",
            fallback=True,
            fallback_kind=kind,
            attempts=attempts,
            transcript=transcript,
            tests=tests,
        )

    last_problem = ("attempts-exhausted", "no choice within the attempt limit")
    for attempt in range(1, config.attempts + 1):
        remaining = config.attempts - attempt
        try:
            completion = model.complete(
                transcript,
                temperature=config.temperature,
                max_tokens=config.max_output_tokens,
                key=f"{key}selection",
            )
        except Interrupted:
            raise
        except BudgetExceeded as e:
            return fallback("budget", f"cost cap reached ({e})", attempt - 1)
        except ContextLengthExceeded as e:
            return fallback("context-length", f"context window exceeded ({e})", attempt - 1)
        except ModelError as e:
            return fallback("model-error", f"model error ({e})", attempt - 1)
        transcript.append(Message(role="assistant", content=completion.text))
        reply = parse_reply(completion.text)
        if reply.kind == "choice":
            if reply.body in ids:
                return SelectorOutcome(
                    chosen_id=reply.body,
                    reason=f"chosen by the selector after {attempt} repl{'y' if attempt == 1 else 'ies'}"
                    f" and {len(tests)} test(s)",
                    attempts=attempt,
                    transcript=transcript,
                    tests=tests,
                )
            last_problem = ("invalid-id", f"the last reply chose an unknown id {reply.body!r}")
            note = f"{reply.body!r} is not one of the candidate ids."
        elif reply.kind == "test" and reply.body.strip():
            script = Script(content=reply.body, language=language)  # type: ignore[arg-type]
            runs = run_test(script)
            tests.append(SelectorTest(script=script, runs=runs))
            last_problem = ("attempts-exhausted", "no choice within the attempt limit")
            if remaining <= 0:
                break
            transcript.append(
                Message(
                    role="user",
                    content=render(
                        "selection/test_results",
                        runs=[
                            _shown_run(row, cell, config.max_output_chars_shown)
                            for row, cell in runs.items()
                        ],
                        remaining=remaining,
                        ids=ids,
                    ),
                )
            )
            continue
        else:
            last_problem = ("misparse", "the last reply had neither a <test> nor a <choice> block")
            note = (
                "I could not find a <test>...</test> or <choice>...</choice> block in your reply."
            )
        if remaining <= 0:
            break
        transcript.append(
            Message(
                role="user",
                content=render(
                    "selection/correction",
                    problem=note,
                    ids=ids,
                    language=language,
                    remaining=remaining,
                ),
            )
        )
    return fallback(last_problem[0], last_problem[1], config.attempts)


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
