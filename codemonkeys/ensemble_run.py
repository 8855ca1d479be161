"""``codemonkeys ensemble``: other systems' predictions (and optionally a codemonkeys run's
own candidates) through the same test matrix, voting and selection. No labels needed."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from codemonkeys.candidates import CandidateSet
from codemonkeys.config import Config
from codemonkeys.distributed import execute, ray_options
from codemonkeys.ensemble import load_predictions, load_run_candidates, merge_candidates
from codemonkeys.pipeline import Observer, Runtime, open_run, require_docker
from codemonkeys.predictions import PredictionFormat, export_predictions
from codemonkeys.problem import Gold, Problem
from codemonkeys.run_records import ProblemResult
from codemonkeys.run_summary import RunSummary, write_status
from codemonkeys.store import RunStore, disk_full_error
from codemonkeys.swebench.dataset import load_dataset, select
from codemonkeys.swebench.jobs import image_aware_solver, problems_from_rows, record_dataset

if TYPE_CHECKING:
    from codemonkeys.ensemble import MergeReport

MODEL_NAME = "codemonkeys-ensemble"


class EnsembleOptions(BaseModel):
    predictions: list[Path]
    dataset: str = "verified"
    own_run: Path | None = None
    ids: list[str] | None = None
    slice: str | None = None
    run_dir: Path
    out: Path | None = None
    quiet: bool = False
    ray: str | None = None
    """A Ray cluster's address (``--ray``): problems run as tasks on its nodes."""


def run_ensemble(
    opts: EnsembleOptions,
    config: Config,
    observer: Observer,
    *,
    stop: threading.Event | None = None,
) -> tuple[Path, RunSummary]:
    """Ensemble the predictions; the predictions file written and how the run ended.
    ``stop``: the job's stop flag (set by interrupts.JobSignals at the CLI entry)."""

    merged, report, rows = _merge(opts, observer)
    rt = open_run(opts.run_dir, config, stop=stop)
    require_docker(rt)
    rt.observer = observer
    rt.store.write_json(Path("merge.json"), report)
    record_dataset(rt.store, rows, opts.dataset)  # makes the ensemble gradable
    by_id = {r["instance_id"]: r for r in rows}
    image_check = image_aware_solver(remove_images=False)

    def solve(rt: Runtime, problem: Problem, gold: Gold | None) -> ProblemResult:
        cs: CandidateSet = merged[problem.id]
        return image_check(rt, problem, gold, candidates=cs)

    failed: list[ProblemResult] = []
    with observer.running(len(merged), rt.costs, config.run.max_cost_usd):
        # a row that cannot become a problem is recorded as failed; the others go on
        rows_to_solve = [by_id[iid] for iid in merged]
        results = execute(
            ray_options(opts.ray, config),
            rt,
            problems_from_rows(rt, rows_to_solve, failed),
            solve=solve,
        )
        results = failed + results
        summary = write_status(rt, results, total=len(merged))
        observer.run_status(summary.status)
    if rt.store.disk_full.is_set():
        raise disk_full_error(rt.store.root)
    out = _export(rt, results, opts.out)
    rt.close()
    return out, summary


def _merge(
    opts: EnsembleOptions, observer: Observer
) -> tuple[dict[str, CandidateSet], MergeReport, list[dict[str, Any]]]:
    """The predictions (and the own run's candidates) merged per selected instance, the
    counts (said on the console) and the dataset rows selected."""
    rejected: list[str] = []  # a malformed row is skipped and recorded, the others go on
    sets = [load_predictions(p, rejected=rejected) for p in opts.predictions]
    own = load_run_candidates(RunStore(opts.own_run)) if opts.own_run else None
    rows = load_dataset(opts.dataset)
    rows = select(rows, ids=opts.ids, slice_=opts.slice)
    merged, report = merge_candidates(sets, own, instance_ids=[r["instance_id"] for r in rows])
    report.rejected = rejected
    for why in rejected:
        observer.message(f"skipped a malformed row: {why}", warning=True)
    observer.message(
        f"candidates: {report.total} predictions, {report.empty} empty, {report.duplicates} duplicates, "
        f"{report.distinct} distinct over {report.instances} instances"
    )
    return merged, report, rows


def _export(rt: Runtime, results: list[ProblemResult], out: Path | None) -> Path:
    """The chosen patches in the harness format (``.json``: the dict form, else JSON lines)."""
    chosen = {r.id: r.chosen_patch for r in results}
    path = out or rt.store.root / "predictions.jsonl"
    fmt: PredictionFormat = "json" if path.suffix == ".json" else "jsonl"
    return export_predictions(chosen, path, MODEL_NAME, fmt=fmt)
