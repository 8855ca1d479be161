"""Every model answer a problem could not use, with the reason, from its records: relevance
and ranking answers that could not be read (no decision or ranking in them, or cut at the
output token limit; those before a correction that worked count too), the corrections each
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
        if not d.get("reused"):
            out += _asked("relevance", str(d.get("path")), d, "no decision in the answer")
    for r in _dicts(context.get("rankings")):
        out += _asked("ranking", f"ranking {r.get('index')}", r, "no ranking in the answer")
    for name, traj in trajectories:
        out += _counted("generation", name, traj.corrections)
    out += _counted("selection", "selector", selection.get("selector_corrections") or [])
    return out


def _asked(stage: str, where: str, rec: Json, unread: str) -> list[UnusableAnswer]:
    """A relevance decision's or a ranking's unusable answers: every answer but the one it
    took (all of them when none could be read)."""
    attempts = int(rec.get("attempts") or 0)
    status = rec.get("status")
    if status == "parse_error":
        count, reason = attempts, str(rec.get("error") or unread)
    elif status in ("relevant", "not_relevant", "ok"):
        count, reason = attempts - 1, "read only after a correction"
    else:
        return []  # an outage or an outgrown context: no answer came back
    if count <= 0:
        return []
    cut = int(rec.get("cut_answers") or 0)
    if cut:
        reason += f"; {cut} of {count} answers cut at the output token limit"
    return [UnusableAnswer(stage=stage, where=where, reason=reason, count=count)]


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
