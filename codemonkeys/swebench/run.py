"""``codemonkeys swebench run`` and ``evaluate``: a dataset through the pipeline, then the
official harness.

The run directory keeps the selected dataset rows (``dataset.jsonl``, gold fields included,
for evaluation and metrics: no prompt is built from it) and each problem's gold record
(``problems/<id>/gold.json``). Predictions are written as ``predictions.jsonl`` in the
harness format after every run, so a partial run can be graded too.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from codemonkeys.config import Config
from codemonkeys.pipeline import (
    Observer,
    ProblemResult,
    Runtime,
    open_run,
    run_problems,
    solve_problem,
)
from codemonkeys.problem import Gold, Problem
from codemonkeys.store import atomic_write_text, disk_full_error, read_jsonl

log = logging.getLogger(__name__)

DATASET_FILE = "dataset.jsonl"
PREDICTIONS_FILE = "predictions.jsonl"
MODEL_NAME = "codemonkeys"


class SwebenchRunOptions(BaseModel):
    dataset: str = "verified"
    split: str = "test"
    ids_file: Path | None = None
    ids: list[str] | None = None
    regex: str | None = None
    slice: str | None = None
    shuffle_seed: int | None = None
    run_dir: Path
    quiet: bool = False
    remove_images: bool = False


class ProgressObserver(Observer):
    """Forwards pipeline events to the live display (progress.Progress)."""

    def __init__(self, progress: Any, rt_costs: Any = None, cap: float | None = None):
        self.progress = progress
        self.costs = rt_costs
        self.cap = cap

    def problem_stage(self, problem_id: str, stage: str) -> None:
        self.progress.problem_stage(problem_id, stage)

    def problem_done(self, result: ProblemResult) -> None:
        self.progress.problem_done(result.id, result.status, result.cost_usd, result.error or None)
        if self.costs is not None:
            self.progress.cost(self.costs.total, self.cap)

    def problem_resumed(self, result: ProblemResult) -> None:
        self.progress.resumed(result.id, result.status)

    def event(self, problem_id: str, kind: str, **info: Any) -> None:
        if kind == "trajectory_started":
            self.progress.trajectory_started(problem_id, info.get("index"))
        elif kind == "trajectory_finished":
            self.progress.trajectory_finished(problem_id, info.get("index"))
            if self.costs is not None:
                self.progress.cost(self.costs.total, self.cap)
        elif kind == "containers":
            self.progress.containers_in_use(int(info.get("n", 0)))


def load_rows(opts: SwebenchRunOptions) -> list[dict[str, Any]]:
    from codemonkeys.swebench.dataset import load_dataset, select

    rows = load_dataset(opts.dataset, split=opts.split)
    return select(
        rows,
        ids_file=opts.ids_file,
        ids=opts.ids,
        regex=opts.regex,
        slice_=opts.slice,
        shuffle_seed=opts.shuffle_seed,
    )


def _problems(
    rt: Runtime, rows: list[dict[str, Any]], failed: list[ProblemResult]
) -> Iterator[tuple[Problem, Gold | None]]:
    """Rows as problems, lazily; a row that cannot become a problem is a failed result
    naming the row and the field, and the others go on."""
    from codemonkeys.swebench.dataset import DatasetError, to_problem

    for row in rows:
        try:
            problem, gold = to_problem(row)
        except DatasetError as e:
            rid = str(row.get("instance_id") or "row")
            result = ProblemResult(id=rid, status="failed", error=str(e))
            rt.store.save_record(rid, "result", result, "dataset-error")
            rt.observer.problem_done(result)
            failed.append(result)
            continue
        rt.store.write_json(rt.store.problem_dir(problem.id) / "gold.json", gold)
        yield problem, gold


def image_aware_solver(remove_images: bool):
    """solve_problem preceded by making sure the instance image is there (one pull
    attempt), and optionally followed by removing it."""

    def solve(
        rt: Runtime, problem: Problem, gold: Gold | None, candidates: Any = None
    ) -> ProblemResult:
        from codemonkeys.swebench.images import (
            ImageMissing,
            ensure_instance_image,
            remove_instance_image,
        )

        client = None
        if rt.config.sandbox.kind == "docker" and problem.image:
            import docker

            try:
                client = docker.from_env(timeout=120)
                ensure_instance_image(problem.image, client)
            except ImageMissing as e:
                result = ProblemResult(id=problem.id, status="failed", error=str(e))
                rt.store.save_record(problem.id, "result", result, "image-missing")
                rt.observer.problem_done(result)
                return result
        result = solve_problem(rt, problem, gold, candidates=candidates)
        if remove_images and client is not None and result.status in ("done", "no_candidates"):
            remove_instance_image(problem.image, client)
        return result

    return solve


def write_predictions(rt: Runtime, path: Path | None = None) -> Path:
    """predictions.jsonl (harness format) from every finished problem of the run."""
    from codemonkeys.ensemble import export_predictions

    path = path or rt.store.root / PREDICTIONS_FILE
    selections: dict[str, str] = {}
    for pid in rt.store.problem_ids():
        result = rt.store.record_data(pid, "result")
        if result:
            selections[pid] = result.get("chosen_patch") or ""
    return export_predictions(selections, path, MODEL_NAME)


def run_swebench(
    opts: SwebenchRunOptions,
    config: Config,
    console: Any,
    *,
    stop: threading.Event | None = None,
) -> list[ProblemResult]:
    """``stop``: the job's stop flag (set by interrupts.JobSignals at the CLI entry)."""
    from codemonkeys.progress import Progress

    rows = load_rows(opts)
    progress = Progress(len(rows), mode="quiet" if opts.quiet else "auto", console=console)
    rt = open_run(opts.run_dir, config, stop=stop)
    rt.observer = ProgressObserver(progress, rt.costs, config.run.max_cost_usd)
    # the rows (with gold) for evaluation and metrics; never read by prompt-building code
    existing = {r.get("instance_id"): r for r in read_jsonl(rt.store.root / DATASET_FILE)}
    existing.update({r["instance_id"]: r for r in rows if r.get("instance_id")})
    rt.store.write_json(Path("dataset.json"), {"source": opts.dataset, "count": len(existing)})
    atomic_write_text(
        rt.store.root / DATASET_FILE,
        "".join(json.dumps(r, default=str) + "\n" for r in existing.values()),
    )

    failed: list[ProblemResult] = []
    with progress:
        results = run_problems(
            rt,
            _problems(rt, rows, failed),
            solve=image_aware_solver(opts.remove_images or config.run.remove_images_after),
        )
    if rt.store.disk_full.is_set():
        raise disk_full_error(rt.store.root)
    path = write_predictions(rt)
    console.print(f"predictions: {path}")
    if rt.stop.is_set():
        console.print("interrupted: rerun the same command to resume")
    elif rt.costs.run_exhausted():
        console.print(
            f"cost cap reached (${rt.costs.total:.2f}); raise --max-cost and rerun to continue"
        )
    rt.close()
    return failed + results


# -- evaluation ------------------------------------------------------------------------
def evaluate_run(
    run_dir: Path,
    *,
    candidates: bool = True,
    intermediate: bool = False,
    max_workers: int = 2,
    console: Any,
) -> dict[str, Any]:
    """Grade the chosen patches and each distinct final candidate of a run with the
    official harness (``intermediate``: every intermediate edit too, for the serial-scaling
    curve); writes problems/<id>/evaluation.json and returns a summary."""
    from codemonkeys.report import patches_for_grading
    from codemonkeys.store import RunStore
    from codemonkeys.swebench.evaluate import evaluate_candidates, evaluate_predictions

    store = RunStore(run_dir)
    rows = list(read_jsonl(run_dir / DATASET_FILE))
    if not rows:
        raise FileNotFoundError(
            f"{run_dir / DATASET_FILE} is missing: is {run_dir} a swebench run?"
        )
    by_id = {r["instance_id"]: r for r in rows}
    preds_path = run_dir / PREDICTIONS_FILE
    chosen: dict[str, str] = {}
    cands: dict[str, list[tuple[str, str]]] = {}
    for pid in store.problem_ids():
        if pid not in by_id:
            continue
        result = store.record_data(pid, "result")
        chosen[pid] = result.get("chosen_patch") or ""
        sel = store.record_data(pid, "selection")
        # selection's candidates, each trajectory's final patch and, on request, every
        # intermediate edit (for the serial-scaling curve)
        graded = {c["id"]: c["patch"] for c in sel.get("candidates", [])}
        found = patches_for_grading(store.problem_dir(pid), intermediate=intermediate)
        for cid, patch in found.items():
            graded.setdefault(cid, patch)
        cands[pid] = sorted(graded.items())
    from codemonkeys.ensemble import export_predictions

    export_predictions(chosen, preds_path, MODEL_NAME)
    report_dir = run_dir / "evaluation"
    run_rows = [by_id[i] for i in chosen]
    resolved = evaluate_predictions(
        preds_path,
        run_rows,
        run_id=f"{run_dir.name}.chosen",
        max_workers=max_workers,
        report_dir=report_dir,
    )
    labels: dict[str, dict[str, bool]] = {}
    if candidates and any(cands.values()):
        labels = evaluate_candidates(
            cands,
            run_rows,
            run_id_prefix=f"{run_dir.name}.cand",
            max_workers=max_workers,
            report_dir=report_dir,
        )
    for pid in chosen:
        store.write_json(
            store.problem_dir(pid) / "evaluation.json",
            {"chosen": bool(resolved.get(pid, False)), "candidates": labels.get(pid, {})},
        )
    n = len(chosen)
    covered = sum(1 for pid in chosen if any(labels.get(pid, {}).values()))
    summary = {
        "problems": n,
        "resolved": sum(1 for pid in chosen if resolved.get(pid)),
        "covered": covered if candidates else None,
    }
    store.write_json(Path("evaluation.json"), summary)
    return summary
