"""Relevance scan: the relevance model reads every source file with the issue.

One call per distinct file content, run concurrently up to the endpoint's concurrency.
Each decision is appended to ``problems/<id>/relevance_decisions.jsonl`` keyed by
(content hash, issue hash, ``asking_key``: model, endpoint, prompt hash, temperature, the
shown file's token limit, output limit, correction turns), so a resumed run, or a second
file with the same content, is never asked again, and a change in any of them asks again.
Stored decisions are read through their type (``StoredDecision``): a line of the decisions
file that does not validate is asked again and the new decision says so
(``replaced_invalid``); a bad cache entry is a miss. A file whose answer cannot be parsed (after
``relevance_retries`` correction turns) is recorded as ``parse_error`` with the reason in
its ``error`` (no decision in the answer, or the answer cut at
``relevance_max_output_tokens``: a cut answer is never read, whatever it holds), never
silently as "not relevant"; a ``ModelError`` (or any other exception) is recorded as that file's
``error`` and the scan goes on (an ``error`` is never reused: the next run asks again);
``BudgetExceeded`` stops the scan and propagates (decisions already made are kept).
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, ValidationError

from codemonkeys.config import ContextConfig
from codemonkeys.context.decision_cache import (
    DecisionCache,
    StoredDecision,
    cacheable_model,
    invalid_reason,
)
from codemonkeys.context.files import SourceFile, read_text
from codemonkeys.context.shrink import shrink_source, truncate_to_tokens
from codemonkeys.errors import BudgetExceeded
from codemonkeys.llm.base import ContextLengthExceeded, Message, Model, ModelError
from codemonkeys.llm.tokens import count_tokens
from codemonkeys.prompts import PromptTemplates
from codemonkeys.store import RunStore

DECISIONS_FILE = "relevance_decisions.jsonl"
Status = Literal["relevant", "not_relevant", "parse_error", "context_length_exceeded", "error"]
_FINAL: tuple[str, ...] = ("relevant", "not_relevant", "parse_error", "context_length_exceeded")
"""Statuses that are stored for reuse; an ``error`` (API failure) is asked again."""


class FileDecision(BaseModel):
    path: str
    sha256: str
    tokens: int
    """Tokens of the whole file."""
    status: Status
    summary: str = ""
    sent_tokens: int = 0
    """Tokens of the prompt sent for this file (0 when the decision was reused)."""
    shrunk: bool = False
    truncated: bool = False
    attempts: int = 0
    cut_answers: int = 0
    """Answers stopped at the output token limit (not read; each got a correction)."""
    reused: bool = False
    """Answered from the decisions file (a resumed run or an identical file)."""
    from_cache: bool = False
    """Answered from the cross-run decision cache (``decision_cache.py``)."""
    error: str = ""
    replaced_invalid: str = ""
    """Why the run's decisions file held an entry for this file that was not taken (it did
    not validate): the file was asked again."""


# -- parsing ---------------------------------------------------------------------------

_DECISION = re.compile(
    r"decision\W{0,12}?(not[\s_-]*relevant|irrelevant|relevant)\b(?!\s*(?:or|/|\|)\s*not)",
    re.IGNORECASE,
)
_BARE = re.compile(
    r"^\W*(not[\s_-]*relevant|irrelevant|relevant)\W*$", re.IGNORECASE | re.MULTILINE
)
_SUMMARY = re.compile(
    r"summary\W{0,6}?[:\-]\s*(.*?)(?=^\W*decision\b|\Z)", re.IGNORECASE | re.DOTALL | re.MULTILINE
)


def _norm(word: str) -> Status:
    return "relevant" if word.lower() == "relevant" else "not_relevant"


def parse_relevance(text: str) -> tuple[Status | None, str]:
    """(decision, summary) from a free-form answer. The decision may sit anywhere; the last
    ``DECISION: ...`` wins (earlier ones may be the model thinking aloud), then a line that
    is only ``RELEVANT`` / ``NOT RELEVANT``. None when no decision can be read."""
    decisions = _DECISION.findall(text)
    if decisions:
        decision: Status | None = _norm(decisions[-1])
    else:
        bare = _BARE.findall(text)
        decision = _norm(bare[-1]) if bare else None
    m = _SUMMARY.search(text)
    if m:
        summary = m.group(1).strip()
    else:
        cut = re.split(r"^\W*decision\b", text, maxsplit=1, flags=re.IGNORECASE | re.MULTILINE)[0]
        summary = cut.strip()
    summary = re.sub(r"\n{3,}", "\n\n", summary)[:2000]
    return decision, summary


# -- the decisions file ------------------------------------------------------------------


def asking_key(model: str, prompts: str, cfg: ContextConfig, endpoint: str = "") -> str:
    """Everything besides the file and the issue that changes an answer: who answers (the
    model, ``endpoint``: its server and capabilities, so two servers serving different
    weights under one name never share answers) and how it is asked."""
    parts = {
        "model": model,
        "endpoint": endpoint,
        "prompts": prompts,
        "temperature": cfg.relevance_temperature,
        "max_file_tokens": cfg.relevance_max_file_tokens,
        "max_output_tokens": cfg.relevance_max_output_tokens,
        "retries": cfg.relevance_retries,
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:24]


def decision_key(sha256: str, issue_hash: str, asking: str) -> str:
    blob = f"{sha256}|{issue_hash}|{asking}".encode()
    return hashlib.sha256(blob).hexdigest()[:32]


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", errors="replace")).hexdigest()


def load_decisions(
    store: RunStore, problem_id: str
) -> tuple[dict[str, StoredDecision], dict[str, str]]:
    """(key -> the latest reusable decision in the problem's decisions file, key -> why an
    entry for a key with no reusable decision was not taken)."""
    out: dict[str, StoredDecision] = {}
    invalid: dict[str, str] = {}
    for rec in store.read_jsonl(store.problem_dir(problem_id) / DECISIONS_FILE):
        key = rec.get("key")
        if not isinstance(key, str) or not key or rec.get("status") == "error":
            continue
        try:
            out[key] = StoredDecision.model_validate({**rec, "key": key})
        except ValidationError as e:
            invalid[key] = invalid_reason(e)
    return out, {k: why for k, why in invalid.items() if k not in out}


# -- the scan ----------------------------------------------------------------------------


def file_for_prompt(path: str, text: str, cfg: ContextConfig) -> tuple[str, str, bool, bool]:
    """(content, note, shrunk, truncated): the file as the relevance model sees it. A file
    over ``relevance_max_file_tokens`` is shrunk to its outline, then truncated."""
    limit = cfg.relevance_max_file_tokens
    if count_tokens(text) <= limit:
        return text, "", False, False
    outline = shrink_source(path, text)
    shrunk = outline != text
    content, truncated = truncate_to_tokens(outline, limit, count_tokens)
    notes = []
    if shrunk:
        notes.append("outline only: function bodies omitted")
    if truncated:
        notes.append("truncated: the end of the file is not shown")
    return content, "; ".join(notes), shrunk, truncated


@dataclass
class FilePrompt:
    """The conversation that asks about one file, and how its content was cut."""

    messages: list[Message]
    user: str
    shrunk: bool
    truncated: bool


def file_prompt(
    templates: PromptTemplates, system: str, path: str, text: str, cfg: ContextConfig
) -> FilePrompt:
    """The system prompt (cached: the same for every file of a problem) and the file."""
    content, note, shrunk, truncated = file_for_prompt(path, text, cfg)
    user = templates.render("relevance/user", path=path, content=content, note=note)
    messages = [
        Message(role="system", content=system, cache=True),
        Message(role="user", content=user),
    ]
    return FilePrompt(messages, user, shrunk, truncated)


def _describe(e: Exception) -> str:
    text = str(e) if isinstance(e, ModelError) else f"{type(e).__name__}: {e}"
    return text[:1000]


class _Stopped(Exception):
    """The scan was stopped (budget reached elsewhere) before this file was asked."""


def run_relevance(
    *,
    problem_id: str,
    issue: str,
    repo_dir: Path,
    files: list[SourceFile],
    model: Model,
    store: RunStore,
    cfg: ContextConfig,
    templates: PromptTemplates,
    max_workers: int,
    cache: DecisionCache | None = None,
    endpoint: str = "",
) -> list[FileDecision]:
    """Decide every file; returns one decision per file in the order of ``files``.
    ``templates``: the prompts asked with (their hash is part of each decision's key);
    ``cache``: decisions shared across runs (looked up after the run's decisions file);
    ``endpoint``: the model's server and capabilities (``relevance_endpoint_id``)."""
    issue_hash = text_hash(issue)
    asking = asking_key(model.name, templates.stage_hash("relevance"), cfg, endpoint)
    by_key: dict[str, list[SourceFile]] = {}
    for f in files:
        by_key.setdefault(decision_key(f.sha256, issue_hash, asking), []).append(f)
    if cache is not None and not cacheable_model(model.name):
        cache = None
    scan = _Scan(problem_id, issue, repo_dir, model, store, cfg, templates, cache)
    results, to_ask = scan.reuse(by_key)  # key -> decision of the first file with it
    results.update(scan.ask_all(to_ask, max_workers))
    if cache is not None and cache.stored:
        cache.prune()
    out: list[FileDecision] = []
    for key, group in by_key.items():
        base = results[key]
        out.append(base)
        out += [
            base.model_copy(update={"path": f.path, "sent_tokens": 0, "reused": True})
            for f in group[1:]
        ]
    order = {f.path: i for i, f in enumerate(files)}
    out.sort(key=lambda d: order[d.path])
    return out


class _Scan:
    """One problem's scan: what every file's call shares."""

    def __init__(
        self,
        problem_id: str,
        issue: str,
        repo_dir: Path,
        model: Model,
        store: RunStore,
        cfg: ContextConfig,
        templates: PromptTemplates,
        cache: DecisionCache | None,
    ):
        self.problem_id, self.repo_dir, self.model = problem_id, repo_dir, model
        self.store, self.cfg, self.templates, self.cache = store, cfg, templates, cache
        self.system = templates.render("relevance/system", issue=issue)
        self.system_tokens = count_tokens(self.system)
        self.decisions_path = store.problem_dir(problem_id) / DECISIONS_FILE
        self.stop = threading.Event()
        self.invalid: dict[str, str] = {}
        """key -> why the decisions file's entry for it was not taken (set by ``reuse``)."""

    def reuse(
        self, by_key: dict[str, list[SourceFile]]
    ) -> tuple[dict[str, FileDecision], list[tuple[str, SourceFile]]]:
        """(decisions answered by the run's decisions file or the cross-run cache, the
        (key, first file) pairs left to ask). A cache answer is copied to the decisions
        file."""
        known, self.invalid = load_decisions(self.store, self.problem_id)
        results: dict[str, FileDecision] = {}
        to_ask: list[tuple[str, SourceFile]] = []
        for key, group in by_key.items():
            rec = known.get(key)
            from_cache = False
            if rec is None and self.cache is not None:
                rec = self.cache.get(key)
                if rec is not None:
                    from_cache = True
                    self.store.append_jsonl(
                        self.decisions_path,
                        {**rec.model_dump(), "key": key, "path": group[0].path,
                         "sha256": group[0].sha256, "model": self.model.name,
                         "from_cache": True, "ts": time.time()},
                    )  # fmt: skip
            if rec is None:
                to_ask.append((key, group[0]))
                continue
            first = group[0]
            results[key] = FileDecision(
                path=first.path,
                sha256=first.sha256,
                tokens=first.tokens,
                status=rec.status,
                summary=rec.summary,
                shrunk=rec.shrunk,
                truncated=rec.truncated,
                attempts=0,
                cut_answers=rec.cut_answers,
                error=rec.error,
                reused=True,
                from_cache=from_cache,
            )
        return results, to_ask

    def ask_all(
        self, to_ask: list[tuple[str, SourceFile]], max_workers: int
    ) -> dict[str, FileDecision]:
        """Ask concurrently; the first exception that escapes (``BudgetExceeded``, an
        interrupt) stops the files not yet asked and propagates."""
        results: dict[str, FileDecision] = {}
        if not to_ask:
            return results
        with ThreadPoolExecutor(
            max_workers=max(1, max_workers), thread_name_prefix="relevance"
        ) as pool:
            futures: dict[Future[FileDecision], str] = {
                pool.submit(self.ask, k, f): k for k, f in to_ask
            }
            try:
                for fut in as_completed(futures):
                    results[futures[fut]] = fut.result()
            except BaseException:
                self.stop.set()
                for fut in futures:
                    fut.cancel()
                raise
        return results

    def ask(self, key: str, f: SourceFile) -> FileDecision:
        """One file's decision, appended to the decisions file (and the cache)."""
        if self.stop.is_set():
            raise _Stopped
        try:
            text = read_text(self.repo_dir, f.path)
        except OSError as e:  # vanished since enumeration: that file's error, not the scan's
            return FileDecision(
                path=f.path, sha256=f.sha256, tokens=f.tokens, status="error", error=str(e)
            )
        prompt = file_prompt(self.templates, self.system, f.path, text, self.cfg)
        decision = FileDecision(
            path=f.path,
            sha256=f.sha256,
            tokens=f.tokens,
            status="parse_error",
            sent_tokens=self.system_tokens + count_tokens(prompt.user),
            shrunk=prompt.shrunk,
            truncated=prompt.truncated,
            replaced_invalid=self.invalid.get(key, ""),
        )
        try:
            self._converse(decision, prompt.messages, f)
        except BudgetExceeded:
            raise
        except ContextLengthExceeded as e:  # final, like a parse error: not in the context
            decision.status, decision.error = "context_length_exceeded", str(e)[:1000]
        except Exception as e:  # an outage or a bug: this file is asked again on resume
            decision.status, decision.error = "error", _describe(e)
        self._record(key, decision)
        return decision

    def _converse(self, decision: FileDecision, messages: list[Message], f: SourceFile) -> None:
        """Ask, and ask again with a correction while the answer has no decision or was cut
        at the output limit (at most ``relevance_retries`` times); ``decision`` keeps the
        last answer's summary and why it could not be used."""
        limit = self.cfg.relevance_max_output_tokens
        for attempt in range(1 + self.cfg.relevance_retries):
            decision.attempts = attempt + 1
            completion = self.model.complete(
                messages,
                temperature=self.cfg.relevance_temperature,
                max_tokens=limit,
                key=f"relevance:{f.sha256}",
            )
            if completion.cut:  # a beginning: never read as a decision
                decision.cut_answers += 1
                status, summary = None, parse_relevance(completion.text)[1]
                decision.error = f"answer cut at the output limit ({limit} tokens)"
            else:
                status, summary = parse_relevance(completion.text)
                decision.error = "no decision in the answer"
            if status is not None:
                decision.status, decision.summary, decision.error = status, summary, ""
                return
            decision.summary = summary[:500]
            correction = self.templates.render(
                "relevance/correction", cut=completion.cut, limit=limit
            )
            messages = [
                *messages,
                Message(role="assistant", content=completion.text, cut=completion.cut),
                Message(role="user", content=correction),
            ]
            decision.sent_tokens += count_tokens(completion.text) + count_tokens(correction)

    def _record(self, key: str, decision: FileDecision) -> None:
        record = {
            "key": key,
            "path": decision.path,
            "sha256": decision.sha256,
            "status": decision.status,
            "summary": decision.summary,
            "shrunk": decision.shrunk,
            "truncated": decision.truncated,
            "attempts": decision.attempts,
            "cut_answers": decision.cut_answers,
            "model": self.model.name,
            "error": decision.error,
            "replaced_invalid": decision.replaced_invalid,
            "ts": time.time(),
        }
        self.store.append_jsonl(self.decisions_path, record)
        if self.cache is not None:
            self.cache.put(key, record)


class RelevanceRecord(BaseModel):
    """Saved as ``relevance.json``: every decision plus what enumeration left out."""

    decisions: list[FileDecision] = Field(default_factory=list)
    excluded: dict[str, str] = Field(default_factory=dict)
    enumerated_tokens: int = 0

    def counts(self) -> dict[str, int]:
        c: dict[str, int] = {}
        for d in self.decisions:
            c[d.status] = c.get(d.status, 0) + 1
        return dict(sorted(c.items()))

    def relevant(self) -> list[FileDecision]:
        return [d for d in self.decisions if d.status == "relevant"]


__all__ = [
    "BudgetExceeded",
    "FileDecision",
    "RelevanceRecord",
    "asking_key",
    "decision_key",
    "load_decisions",
    "parse_relevance",
    "run_relevance",
]
