"""The relevance scan through a provider's batch API (``context.relevance_batch``).

Every file the decisions file cannot answer is sent in one batch; the batch id is appended
to ``problems/<id>/relevance_batches.jsonl`` before anything waits on it, so a killed run
polls the same batch on its rerun instead of paying again. Answers are written to the same
decisions file as interactive ones (with their ``batch_id``); then the ordinary scan runs
and finds them there. What a batch could not answer (errored, expired or canceled items,
an answer without a decision) is left to that interactive scan, which asks those files
again (with its correction turn for unparsable answers). Files the cross-run decision
cache answers are not sent; batch answers are stored in that cache too. Batch usage is
charged at the batch price (half the list price) to the run's cost tracker under the
``relevance`` stage.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from codemonkeys.config import ContextConfig
from codemonkeys.context.decision_cache import DecisionCache, cacheable_model
from codemonkeys.context.files import SourceFile, read_text
from codemonkeys.context.relevance import (
    DECISIONS_FILE,
    decision_key,
    file_for_prompt,
    load_decisions,
    parse_relevance,
    text_hash,
)
from codemonkeys.llm.base import Message
from codemonkeys.llm.batch import BATCH_PRICE_FACTOR, BatchAPI, BatchRequest
from codemonkeys.llm.pricing import Pricing
from codemonkeys.prompts import prompt_hash, render
from codemonkeys.store import RunStore

log = logging.getLogger(__name__)

BATCHES_FILE = "relevance_batches.jsonl"


def pending_batches(store: RunStore, problem_id: str) -> dict[str, dict]:
    """batch id -> its submission record, for batches submitted and not yet collected."""
    pending: dict[str, dict] = {}
    for rec in store.read_jsonl(store.problem_dir(problem_id) / BATCHES_FILE):
        if rec.get("state") == "submitted":
            pending[rec["batch_id"]] = rec
        elif rec.get("state") == "collected":
            pending.pop(rec.get("batch_id"), None)
    return pending


def run_relevance_batches(
    *,
    problem_id: str,
    issue: str,
    repo_dir: Path,
    files: list[SourceFile],
    model_name: str,
    api: BatchAPI,
    store: RunStore,
    cfg: ContextConfig,
    pricing: Pricing,
    add_cost,
    stop: threading.Event | None = None,
    cache: DecisionCache | None = None,
) -> dict[str, int]:
    """Submit (or pick up) the batch for the undecided files, wait, record the answers.
    Returns counts per item outcome (``decided``, ``no_decision``, ``errored``, ...)."""
    stop = stop or threading.Event()
    if cache is not None and not cacheable_model(model_name):
        cache = None
    issue_hash = text_hash(issue)
    prompts = prompt_hash("relevance")
    system = render("relevance/system", issue=issue)
    known = load_decisions(store, problem_id)
    batches_path = store.problem_dir(problem_id) / BATCHES_FILE
    pending = pending_batches(store, problem_id)
    in_flight = {k for rec in pending.values() for k in rec.get("files", {})}

    todo: dict[str, SourceFile] = {}
    for f in files:
        key = decision_key(f.sha256, issue_hash, model_name, prompts)
        if key in known or key in in_flight or key in todo:
            continue
        if cache is not None and cache.get(key) is not None:
            continue  # the interactive scan takes it from the cache
        todo[key] = f
    if todo:
        requests, meta = [], {}
        for key, f in todo.items():
            content, note, shrunk, truncated = file_for_prompt(
                f.path, read_text(repo_dir, f.path), cfg
            )
            user = render("relevance/user", path=f.path, content=content, note=note)
            messages = [
                Message(role="system", content=system, cache=True),
                Message(role="user", content=user),
            ]
            requests.append(
                BatchRequest(
                    custom_id=key,
                    messages=messages,
                    temperature=cfg.relevance_temperature,
                    max_tokens=cfg.relevance_max_output_tokens,
                )
            )
            meta[key] = {
                "path": f.path,
                "sha256": f.sha256,
                "shrunk": shrunk,
                "truncated": truncated,
            }
        batch_id = api.submit(requests)
        rec = {"batch_id": batch_id, "provider": api.provider, "model": model_name,
               "state": "submitted", "files": meta, "ts": time.time()}  # fmt: skip
        store.append_jsonl(batches_path, rec)
        pending[batch_id] = rec
        log.info("%s: relevance batch %s submitted (%d files)", problem_id, batch_id, len(todo))

    counts: dict[str, int] = {}
    for batch_id, rec in pending.items():
        while not api.ended(batch_id):
            if stop.wait(cfg.relevance_batch_poll_s):
                return counts
        items = api.results(batch_id)
        unanswered = set(rec["files"]) - {item.custom_id for item in items}
        if unanswered:  # the batch expired or was cancelled before reaching them
            counts["expired"] = counts.get("expired", 0) + len(unanswered)
        for item in items:
            meta = rec["files"].get(item.custom_id)
            if meta is None:
                continue
            outcome = item.status
            if item.status == "succeeded":
                price = pricing.cost(model_name, item.usage) * BATCH_PRICE_FACTOR
                add_cost(price)
                status, summary = parse_relevance(item.text)
                if status is None:
                    outcome = "no_decision"
                else:
                    outcome = "decided"
                    decision = {"key": item.custom_id, **meta, "status": status,
                                "summary": summary, "attempts": 1, "model": model_name,
                                "error": "", "batch_id": batch_id, "cost_usd": price,
                                "ts": time.time()}  # fmt: skip
                    store.append_jsonl(store.problem_dir(problem_id) / DECISIONS_FILE, decision)
                    if cache is not None:
                        cache.put(item.custom_id, decision)
            counts[outcome] = counts.get(outcome, 0) + 1
        store.append_jsonl(
            batches_path, {"batch_id": batch_id, "state": "collected", "counts": counts}
        )
    return counts
