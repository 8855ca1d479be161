"""Ranking: the primary model orders the relevant files, several times; we merge.

The prompt lists the relevant files (path, token size, summary) sorted by path, so the
same inputs always give the same prompt. Each of the N rankings (``key="ranking-<i>"`` so
the N requests differ) is parsed leniently: a JSON list anywhere in the answer, else one
known path per line. Paths the model invented are dropped and recorded. An unparsable
ranking, or one cut at ``ranking_max_output_tokens`` (never read: a cut list is a
prefix), gets ``ranking_retries`` correction turns; a ranking that still fails is recorded
as ``parse_error``, one whose call raised (``ModelError`` after retries, or anything else)
as ``error`` (the context then counts as incomplete, see ``ContextRecord.missing``).
Merging uses the mean relative rank (position / length; a file missing from a ranking
counts as 1.0); with no usable ranking at all we fall back to relevance order. ``BudgetExceeded`` propagates; nothing else aborts.
"""

from __future__ import annotations

import json
import re
from typing import Literal

from pydantic import BaseModel, Field

from codemonkeys.config import ContextConfig
from codemonkeys.context.relevance import FileDecision
from codemonkeys.errors import BudgetExceeded
from codemonkeys.llm.base import ContextLengthExceeded, Message, Model, ModelError
from codemonkeys.prompts import PromptTemplates


class RankingAttempt(BaseModel):
    index: int
    status: Literal["ok", "parse_error", "context_length_exceeded", "error"]
    ranking: list[str] = Field(default_factory=list)
    invented: list[str] = Field(default_factory=list)
    """Paths the model named that are not among the relevant files (dropped)."""
    attempts: int = 0
    cut_answers: int = 0
    """Answers stopped at the output token limit (not read; each got a correction)."""
    error: str = ""
    """Why the ranking could not be used (no ranking in the answer, the answer cut at the
    output limit, the provider's error)."""


class RankingResult(BaseModel):
    attempts: list[RankingAttempt] = Field(default_factory=list)
    merged: list[str] = Field(default_factory=list)
    fallback: bool = False
    """True when no ranking could be used and relevance order was taken instead."""


_FENCED = re.compile(r"```(?:json|JSON)?\s*\n(.*?)```", re.DOTALL)
_ARRAY = re.compile(r"\[[^\[\]]*\]", re.DOTALL)


def _clean(p: str) -> str:
    return p.strip().strip("`'\"").strip().removeprefix("./")


def parse_ranking(text: str, known: set[str]) -> tuple[list[str], list[str]] | None:
    """(ranking of known paths, invented paths) or None when no ranking can be read.

    Tries, in order: JSON lists in fenced blocks, JSON lists anywhere (last one first, as
    the answer usually ends with it), then lines naming a known path. Duplicates keep
    their first position."""
    candidates: list[list[str]] = []
    for block in reversed(_FENCED.findall(text)):
        for arr in reversed(_ARRAY.findall(block)):
            candidates.append(_json_list(arr))
    for arr in reversed(_ARRAY.findall(text)):
        candidates.append(_json_list(arr))
    for items in candidates:
        if not items:
            continue
        ranking, invented = _split(items, known)
        if ranking:
            return ranking, invented
    lines = []
    for line in text.splitlines():
        stripped = re.sub(r"^\s*(?:[-*+]|\d+[.)])\s*", "", line)
        token = _clean(stripped.split()[0]) if stripped.split() else ""
        if token in known:
            lines.append(token)
    if lines:
        return _split(lines, known)
    return None


def _json_list(arr: str) -> list[str]:
    try:
        value = json.loads(arr)
    except json.JSONDecodeError:
        return []
    if not isinstance(value, list):
        return []
    return [_clean(v) for v in value if isinstance(v, str) and v.strip()]


def _split(items: list[str], known: set[str]) -> tuple[list[str], list[str]]:
    """Known and invented paths, each in first-seen order without duplicates (linear: an
    answer may list hundreds of thousands of paths)."""
    ranking = dict.fromkeys(p for p in items if p in known)
    invented = dict.fromkeys(p for p in items if p not in known)
    return list(ranking), list(invented)


def merge_rankings(rankings: list[list[str]], base_order: list[str]) -> list[str]:
    """Order by mean relative rank (0 = first); a file missing from a ranking counts 1.0
    there, so files no ranking mentions come last, in ``base_order`` (which breaks ties)."""
    if not rankings:
        return list(base_order)
    positions = [{p: i / len(r) for i, p in reversed(list(enumerate(r)))} for r in rankings]
    score = {p: sum(pos.get(p, 1.0) for pos in positions) / len(rankings) for p in base_order}
    order = {p: i for i, p in enumerate(base_order)}
    return sorted(score, key=lambda p: (score[p], order[p]))


def _one_ranking(
    index: int,
    messages: list[Message],
    known: set[str],
    model: Model,
    cfg: ContextConfig,
    templates: PromptTemplates,
) -> RankingAttempt:
    """One ranking, with up to ``ranking_retries`` correction turns for an answer without a
    readable ranking or cut at the output limit (never read: its list may be a prefix)."""
    attempt = RankingAttempt(index=index, status="parse_error")
    limit = cfg.ranking_max_output_tokens
    try:
        for a in range(1 + cfg.ranking_retries):
            attempt.attempts = a + 1
            completion = model.complete(
                messages,
                temperature=cfg.ranking_temperature,
                max_tokens=limit,
                key=f"ranking-{index}",
            )
            if completion.cut:
                attempt.cut_answers += 1
                attempt.error = f"answer cut at the output limit ({limit} tokens)"
                parsed = None
            else:
                attempt.error = "no ranking in the answer"
                parsed = parse_ranking(completion.text, known)
            if parsed is not None:
                attempt.ranking, attempt.invented = parsed
                attempt.status, attempt.error = "ok", ""
                break
            correction = templates.render("ranking/correction", cut=completion.cut, limit=limit)
            messages = [
                *messages,
                Message(role="assistant", content=completion.text, cut=completion.cut),
                Message(role="user", content=correction),
            ]
    except BudgetExceeded:
        raise
    except ContextLengthExceeded as e:  # final: the list does not fit this model
        attempt.status, attempt.error = "context_length_exceeded", str(e)[:1000]
    except Exception as e:  # an outage or a bug: recorded, the context is incomplete
        text = str(e) if isinstance(e, ModelError) else f"{type(e).__name__}: {e}"
        attempt.status, attempt.error = "error", text[:1000]
    return attempt


def rank_files(
    *,
    issue: str,
    relevant: list[FileDecision],
    model: Model,
    cfg: ContextConfig,
    templates: PromptTemplates,
) -> RankingResult:
    """Run ``cfg.rankings`` rankings, asked with ``templates``, and merge them (see the
    module docstring)."""
    files = sorted(relevant, key=lambda d: d.path)
    base_order = [d.path for d in relevant]
    if not files:
        return RankingResult(merged=[], fallback=False)
    known = {d.path for d in files}
    system = templates.render("ranking/system", budget=cfg.token_budget)
    user = templates.render("ranking/user", issue=issue, files=files)
    result = RankingResult()
    for i in range(cfg.rankings):
        messages = [
            Message(role="system", content=system),
            Message(role="user", content=user, cache=True),
        ]
        result.attempts.append(_one_ranking(i, messages, known, model, cfg, templates))
    usable = [a.ranking for a in result.attempts if a.status == "ok" and a.ranking]
    if usable:
        result.merged = merge_rankings(usable, base_order)
    else:
        result.merged, result.fallback = list(base_order), True
    return result
