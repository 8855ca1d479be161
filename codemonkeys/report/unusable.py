"""Every model answer a problem could not use, with the reason, from its records: relevance
decisions without a decision (``parse_error``: no decision in the answer, or the answer cut
at the output token limit), rankings that could not be read, the corrections each
trajectory's state machines sent (an answer cut at the limit, without the expected blocks,
an edit that did not apply, ...) and the selector's corrected replies. ``show`` lists them;
no calls, nothing executed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel

from codemonkeys.generation.records import TrajectoryRecord

CORRECTION_REASONS = {
    "answer_cut": "cut at the output token limit: not parsed",
    "no_tags": "none of the expected blocks",
    "multiple_edits": "several <edit> blocks",
    "done_without_test": "<done> with no script to approve",
    "done_without_edit": "<done> with no working edit to approve",
    "empty_script": "an empty <test> block",
    "edit_error": "the edit did not apply",
    "answer-cut": "cut at the output token limit: not parsed",
    "misparse": "neither a <test> nor a <choice> block",
    "invalid-id": "chose an unknown candidate id",
}
"""What each correction kind (trajectories' ``corrections``, the selector's) means."""

Json = Mapping[str, Any]


class UnusableAnswer(BaseModel):
    stage: str
    """relevance, ranking, tests/edits (a trajectory), selection."""
    where: str
    """The file, ranking, trajectory or conversation it belongs to."""
    reason: str
    count: int = 1


def unusable_answers(
    relevance: Json,
    context: Json,
    trajectories: Sequence[tuple[str, TrajectoryRecord]],
    selection: Json,
) -> list[UnusableAnswer]:
    """The problem's unusable answers, in pipeline order (records as read from disk)."""
    out: list[UnusableAnswer] = []
    for d in _dicts(relevance.get("decisions")):
        if d.get("status") == "parse_error":
            reason = str(d.get("error") or "no decision in the answer")
            out.append(UnusableAnswer(stage="relevance", where=str(d.get("path")), reason=reason))
    for r in _dicts(context.get("rankings")):
        if r.get("status") == "parse_error":
            reason = str(r.get("error") or "no ranking in the answer")
            out.append(
                UnusableAnswer(stage="ranking", where=f"ranking {r.get('index')}", reason=reason)
            )
    for name, traj in trajectories:
        out += _counted("generation", name, traj.corrections)
    out += _counted("selection", "selector", selection.get("selector_corrections") or [])
    return out


def _counted(stage: str, where: str, kinds: Sequence[Any]) -> list[UnusableAnswer]:
    counts: dict[str, int] = {}
    for kind in kinds:
        counts[str(kind)] = counts.get(str(kind), 0) + 1
    return [
        UnusableAnswer(
            stage=stage,
            where=where,
            reason=f"{kind}: {CORRECTION_REASONS.get(kind, kind)}",
            count=n,
        )
        for kind, n in counts.items()
    ]


def _dicts(value: Any) -> list[Json]:
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []
