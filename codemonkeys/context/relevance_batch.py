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
from collections.abc import Callable
from pathlib import Path
from typing import Literal, TypedDict, cast

from codemonkeys.config import ContextConfig
from codemonkeys.context.decision_cache import DecisionCache, cacheable_model
from codemonkeys.context.files import SourceFile, read_text
from codemonkeys.context.relevance import (
    DECISIONS_FILE,
    asking_key,
    decision_key,
    file_prompt,
    load_decisions,
    parse_relevance,
    text_hash,
)
from codemonkeys.llm.batch import BATCH_PRICE_FACTOR, BatchAPI, BatchItem, BatchRequest
from codemonkeys.llm.pricing import Pricing
from codemonkeys.prompts import PromptTemplates
from codemonkeys.store import RunStore

log = logging.getLogger(__name__)

BATCHES_FILE = "relevance_batches.jsonl"


class BatchFile(TypedDict):
    """A file in a submitted batch, under its decision key."""

    path: str
    sha256: str
    shrunk: bool
    truncated: bool


class SubmittedBatch(TypedDict):
    """A line of ``relevance_batches.jsonl`` written before anything waits on the batch."""

    batch_id: str
    provider: str
    model: str
    state: Literal["submitted"]
    files: dict[str, BatchFile]
    ts: float


def pending_batches(store: RunStore, problem_id: str) -> dict[str, SubmittedBatch]:
    """batch id -> its submission record, for batches submitted and not yet collected."""
    pending: dict[str, SubmittedBatch] = {}
    for rec in store.read_jsonl(store.problem_dir(problem_id) / BATCHES_FILE):
        if rec.get("state") == "submitted":
            pending[rec["batch_id"]] = cast(SubmittedBatch, rec)
        elif rec.get("state") == "collected":
            pending.pop(rec.get("batch_id", ""), None)
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
    templates: PromptTemplates,
    pricing: Pricing,
    add_cost: Callable[[float], None],
    stop: threading.Event | None = None,
    cache: DecisionCache | None = None,
    endpoint: str = "",
) -> dict[str, int]:
    """Submit (or pick up) the batch for the undecided files, wait, record the answers.
    Returns counts per item outcome (``decided``, ``no_decision``, ``errored``, ...)."""
    stop = stop or threading.Event()
    if cache is not None and not cacheable_model(model_name):
        cache = None
    scan = _BatchScan(problem_id, model_name, api, store, cfg, templates, pricing, add_cost, cache)
    scan.asking = asking_key(model_name, templates.stage_hash("relevance"), cfg, endpoint)
    pending = pending_batches(store, problem_id)
    todo = scan.undecided(issue, files, pending)
    if todo:
        submitted = scan.submit(issue, repo_dir, todo)
        pending[submitted["batch_id"]] = submitted
    counts: dict[str, int] = {}
    for batch_id, rec in pending.items():
        while not api.ended(batch_id):
            if stop.wait(cfg.relevance_batch_poll_s):
                return counts
        scan.collect(batch_id, rec, counts)
    return counts


class _BatchScan:
    """One problem's batch scan: what submitting and collecting share."""

    def __init__(
        self,
        problem_id: str,
        model_name: str,
        api: BatchAPI,
        store: RunStore,
        cfg: ContextConfig,
        templates: PromptTemplates,
        pricing: Pricing,
        add_cost: Callable[[float], None],
        cache: DecisionCache | None,
    ):
        self.problem_id, self.model_name, self.api = problem_id, model_name, api
        self.store, self.cfg, self.templates = store, cfg, templates
        self.pricing, self.add_cost = pricing, add_cost
        self.cache = cache
        self.asking = asking_key(model_name, templates.stage_hash("relevance"), cfg)
        """The decision keys' ``asking_key`` (the caller sets the endpoint's)."""
        self.batches_path = store.problem_dir(problem_id) / BATCHES_FILE
        self.decisions_path = store.problem_dir(problem_id) / DECISIONS_FILE

    def undecided(
        self, issue: str, files: list[SourceFile], pending: dict[str, SubmittedBatch]
    ) -> dict[str, SourceFile]:
        """Files (one per decision key) that neither the decisions file, a pending batch
        nor the cross-run cache answers."""
        issue_hash = text_hash(issue)
        known, _invalid = load_decisions(self.store, self.problem_id)
        in_flight = {k for rec in pending.values() for k in rec.get("files", {})}
        todo: dict[str, SourceFile] = {}
        for f in files:
            key = decision_key(f.sha256, issue_hash, self.asking)
            if key in known or key in in_flight or key in todo:
                continue
            if self.cache is not None and self.cache.get(key) is not None:
                continue  # the interactive scan takes it from the cache
            todo[key] = f
        return todo

    def submit(self, issue: str, repo_dir: Path, todo: dict[str, SourceFile]) -> SubmittedBatch:
        """One batch for ``todo``; its id is on disk before anything waits on it."""
        system = self.templates.render("relevance/system", issue=issue)
        requests: list[BatchRequest] = []
        meta: dict[str, BatchFile] = {}
        for key, f in todo.items():
            prompt = file_prompt(
                self.templates, system, f.path, read_text(repo_dir, f.path), self.cfg
            )
            requests.append(
                BatchRequest(
                    custom_id=key,
                    messages=prompt.messages,
                    temperature=self.cfg.relevance_temperature,
                    max_tokens=self.cfg.relevance_max_output_tokens,
                )
            )
            meta[key] = {"path": f.path, "sha256": f.sha256, "shrunk": prompt.shrunk,
                         "truncated": prompt.truncated}  # fmt: skip
        batch_id = self.api.submit(requests)
        rec: SubmittedBatch = {"batch_id": batch_id, "provider": self.api.provider,
                               "model": self.model_name, "state": "submitted", "files": meta,
                               "ts": time.time()}  # fmt: skip
        self.store.append_jsonl(self.batches_path, dict(rec))
        log.info(
            "%s: relevance batch %s submitted (%d files)", self.problem_id, batch_id, len(todo)
        )
        return rec

    def collect(self, batch_id: str, rec: SubmittedBatch, counts: dict[str, int]) -> None:
        """Record the ended batch's answers; ``counts`` adds each item's outcome."""
        items = self.api.results(batch_id)
        unanswered = set(rec["files"]) - {item.custom_id for item in items}
        if unanswered:  # the batch expired or was cancelled before reaching them
            counts["expired"] = counts.get("expired", 0) + len(unanswered)
        for item in items:
            meta = rec["files"].get(item.custom_id)
            if meta is None:
                continue
            outcome = self._decision(batch_id, item, meta) if item.status == "succeeded" else None
            key = outcome or item.status
            counts[key] = counts.get(key, 0) + 1
        self.store.append_jsonl(
            self.batches_path, {"batch_id": batch_id, "state": "collected", "counts": counts}
        )

    def _decision(self, batch_id: str, item: BatchItem, meta: BatchFile) -> str:
        """A succeeded item: charged at the batch price; its decision (if it has one) goes
        to the decisions file and the cache. Returns ``decided``, ``no_decision`` or ``cut``
        (stopped at the output token limit: never read as a whole answer); a file without a
        decision is asked interactively."""
        price = self.pricing.cost(self.model_name, item.usage) * BATCH_PRICE_FACTOR
        self.add_cost(price)
        if item.cut:
            return "cut"
        status, summary = parse_relevance(item.text)
        if status is None:
            return "no_decision"
        decision = {"key": item.custom_id, **meta, "status": status, "summary": summary,
                    "attempts": 1, "model": self.model_name, "error": "",
                    "batch_id": batch_id, "cost_usd": price, "ts": time.time()}  # fmt: skip
        self.store.append_jsonl(self.decisions_path, decision)
        if self.cache is not None:
            self.cache.put(item.custom_id, decision)
        return "decided"
