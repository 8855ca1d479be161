"""The context stage end to end: enumerate, relevance scan, rank, pack, measure.

``run_context`` saves two records in the problem directory: ``relevance.json`` (every
decision, fingerprint ``config.fingerprint("relevance")``) and ``context.json`` (rankings and
the packed context, fingerprint ``config.fingerprint("context")``). A resumed run with the
same config reuses them; a changed config recomputes (per-file decisions still come from
the decisions file when their key is unchanged, so only what changed is paid for again).
Gold data only feeds ``metrics``, computed after every prompt was sent.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from codemonkeys.config import Config
from codemonkeys.context.decision_cache import DecisionCache
from codemonkeys.context.files import SourceFile, enumerate_files, read_text
from codemonkeys.context.packing import pack_files
from codemonkeys.context.prefilter import PREFILTER_REASON, apply_prefilter
from codemonkeys.context.ranking import rank_files
from codemonkeys.context.records import ContextRecord, RelevantFile
from codemonkeys.context.relevance import RelevanceRecord, run_relevance
from codemonkeys.context.relevance_batch import run_relevance_batches
from codemonkeys.llm.batch import batch_api
from codemonkeys.problem import Gold, Problem
from codemonkeys.records import Record
from codemonkeys.store import RunStore

if TYPE_CHECKING:
    from codemonkeys.llm import ModelHub

log = logging.getLogger(__name__)

RELEVANCE_RECORD = Record.RELEVANCE
CONTEXT_RECORD = Record.CONTEXT


def context_metrics(
    record: ContextRecord, relevance: RelevanceRecord, gold: Gold
) -> dict[str, float]:
    """Recall of the gold-patch files at the budget and what the scan read."""
    gold_files = gold.edited_files()
    decided = {d.path: d.status for d in relevance.decisions}
    packed = set(record.paths)
    hit = [p for p in gold_files if p in packed]
    return {
        "gold_files": float(len(gold_files)),
        "recall": (len(hit) / len(gold_files)) if gold_files else 1.0,
        "gold_files_packed": float(len(hit)),
        "gold_files_enumerated": float(sum(1 for p in gold_files if p in decided)),
        "gold_files_relevant": float(sum(1 for p in gold_files if decided.get(p) == "relevant")),
        "relevant_files": float(len(record.relevant)),
        "tokens_read": float(relevance.enumerated_tokens),
        "relevance_prompt_tokens": float(sum(d.sent_tokens for d in relevance.decisions)),
        "packed_tokens": float(record.total_tokens),
    }


def _relevance(
    problem: Problem,
    repo_dir: Path,
    paths: list[str],
    hub: ModelHub,
    store: RunStore,
    config: Config,
) -> tuple[RelevanceRecord, bool]:
    """(record, freshly computed)."""
    fp = config.fingerprint("relevance")
    rec = store.load_record(problem.id, RELEVANCE_RECORD, RelevanceRecord, fp)
    if rec is not None and not any(d.status == "error" for d in rec.decisions):
        return rec, False
    enum = enumerate_files(repo_dir, paths, config.context)
    if config.context.prefilter:
        enum = apply_prefilter(problem.issue, repo_dir, enum, config.context)
    log.info(
        "%s: %d source files (%d tokens) to scan; excluded %s",
        problem.id,
        len(enum.files),
        enum.total_tokens,
        enum.excluded_counts(),
    )
    model = hub.model("relevance", problem_id=problem.id, stage="relevance")
    if config.context.relevance_batch:
        _batch_scan(problem, repo_dir, enum.files, model.name, hub, store, config)
    decisions = run_relevance(
        problem_id=problem.id,
        issue=problem.issue,
        repo_dir=repo_dir,
        files=enum.files,
        model=model,
        store=store,
        cfg=config.context,
        templates=config.prompt_templates(),
        max_workers=model.limit.max_concurrency,
        cache=DecisionCache.from_config(config.context),
        endpoint=_endpoint_id(config, hub, model.name),
    )
    rec = RelevanceRecord(
        decisions=decisions, excluded=enum.excluded, enumerated_tokens=enum.total_tokens
    )
    store.save_record(problem.id, RELEVANCE_RECORD, rec, fp)
    return rec, True


def _endpoint_id(config: Config, hub: ModelHub, model_name: str) -> str:
    """Who answers the scan besides the model's name: its server (two local servers may
    serve different weights under one name) and its capabilities (thinking, reasoning
    effort); part of every decision's key."""
    base_url = (config.models.relevance_endpoint().base_url or "").rstrip("/")
    return f"{base_url}|{hub.pricing.capabilities(model_name).model_dump_json()}"


def _batch_scan(
    problem: Problem,
    repo_dir: Path,
    files: list[SourceFile],
    model_name: str,
    hub: ModelHub,
    store: RunStore,
    config: Config,
) -> None:
    """The batch part of the scan; what it leaves undecided the interactive scan asks."""
    api = batch_api(hub.provider("relevance"))
    if api is None:
        log.warning("%s: %s has no batch API; the scan runs interactively", problem.id, model_name)
        return
    hub.costs.check(problem.id)  # a spent budget stops before a batch is paid for
    counts = run_relevance_batches(
        problem_id=problem.id,
        issue=problem.issue,
        repo_dir=repo_dir,
        files=files,
        model_name=model_name,
        api=api,
        store=store,
        cfg=config.context,
        templates=config.prompt_templates(),
        pricing=hub.pricing,
        add_cost=lambda usd: hub.costs.add(problem.id, "relevance", usd),
        stop=hub.costs.stop,  # Ctrl-C stops the wait; the rerun polls the same batch
        cache=DecisionCache.from_config(config.context),
        endpoint=_endpoint_id(config, hub, model_name),
    )
    log.info("%s: relevance batch outcomes %s", problem.id, counts)


def run_context(
    problem: Problem,
    repo_dir: Path,
    paths: list[str],
    hub: ModelHub,
    store: RunStore,
    config: Config,
    *,
    gold: Gold | None = None,
) -> ContextRecord:
    """Context for one problem (see the module docstring).

    Raises ``BudgetExceeded`` when a cost cap stops the scan or the ranking; per-file and
    per-ranking model errors are recorded, never raised, and counted in the record
    (``missing_decisions``, ``failed_rankings``; ``ContextRecord.missing`` says why it is
    incomplete). An incomplete relevance or context record is not trusted on resume: the
    failed calls are asked again. Whether generation may start on an incomplete context is
    the caller's decision (``context.allow_missing_decisions``).
    """
    relevance, fresh = _relevance(problem, Path(repo_dir), paths, hub, store, config)
    fp = config.fingerprint("context")
    rec = None if fresh else store.load_record(problem.id, CONTEXT_RECORD, ContextRecord, fp)
    if rec is not None and rec.missing:
        rec = None  # failed calls are asked again (completed ones come from the call log)
    changed = rec is None
    if rec is None:
        rec = _rank_and_pack(problem, Path(repo_dir), relevance, hub, config)
    if gold is not None and rec.metrics is None:
        rec.metrics = context_metrics(rec, relevance, gold)
        changed = True
    if changed:
        store.save_record(problem.id, CONTEXT_RECORD, rec, fp)
    return rec


def _rank_and_pack(
    problem: Problem, repo_dir: Path, relevance: RelevanceRecord, hub: ModelHub, config: Config
) -> ContextRecord:
    """Rank the relevant files and pack the best within the budget."""
    cfg = config.context
    relevant = relevance.relevant()
    model = hub.model("primary", problem_id=problem.id, stage="ranking")
    # RecordingModel.complete lacks the Model protocol's ``stage`` (llm/recording.py)
    ranking = rank_files(
        issue=problem.issue,
        relevant=relevant,
        model=model,
        cfg=cfg,
        templates=config.prompt_templates(),
    )
    budget = int(cfg.token_budget * (1.0 - cfg.token_margin))
    # Only files the scan read: a ranking naming anything else (a secret) is ignored.
    scanned = {d.path for d in relevance.decisions}
    packing = pack_files(
        [p for p in ranking.merged if p in scanned],
        lambda p: read_text(repo_dir, p),
        budget,
        shrink=cfg.shrink_large_files,
    )
    rec = ContextRecord(
        problem_id=problem.id,
        token_budget=cfg.token_budget,
        packing_budget=budget,
        enumerated_files=len(relevance.decisions),
        excluded_counts=_counts(relevance.excluded.values()),
        prefilter_skipped=[p for p, r in relevance.excluded.items() if r == PREFILTER_REASON],
        relevance_counts=relevance.counts(),
        relevance_from_cache=sum(1 for d in relevance.decisions if d.from_cache),
        relevant=[RelevantFile(path=d.path, tokens=d.tokens, summary=d.summary) for d in relevant],
        parse_errors=[d.path for d in relevance.decisions if d.status == "parse_error"],
        errors=[d.path for d in relevance.decisions if d.status == "error"],
        rankings=ranking.attempts,
        ranking=ranking.merged,
        ranking_fallback=ranking.fallback,
        packed=packing.packed,
        skipped=packing.skipped,
        total_tokens=packing.total_tokens,
        missing_decisions=sum(1 for d in relevance.decisions if d.status == "error"),
        failed_rankings=sum(1 for a in ranking.attempts if a.status == "error"),
    )
    if rec.parse_errors or rec.errors:
        log.warning(
            "%s: relevance could not decide %d file(s) (parse errors) and failed on %d; "
            "they are not in the context",
            problem.id,
            len(rec.parse_errors),
            len(rec.errors),
        )
    return rec


def _counts(values: Iterable[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in values:
        out[v] = out.get(v, 0) + 1
    return dict(sorted(out.items()))
