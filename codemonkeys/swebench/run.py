"""``codemonkeys swebench run`` and ``evaluate``: a dataset through the pipeline, then the
official harness.

The run directory keeps the selected dataset rows (``dataset.jsonl``, gold fields included,
for evaluation and metrics: no prompt is built from it) and each problem's gold record
(``problems/<id>/gold.json``). Predictions are written as ``predictions.jsonl`` in the
harness format after every run, so a partial run can be graded too.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from codemonkeys.candidates import candidate_id
from codemonkeys.config import Config
from codemonkeys.distributed import execute, ray_options
from codemonkeys.distributed.driver import RayOptions
from codemonkeys.pipeline import (
    Observer,
    RunSummary,
    Runtime,
    open_run,
    require_docker,
    write_status,
)
from codemonkeys.predictions import export_predictions
from codemonkeys.records import Record
from codemonkeys.run_patches import patch_identity, patches_for_grading
from codemonkeys.run_records import ProblemResult
from codemonkeys.store import RunStore, read_jsonl
from codemonkeys.swebench import evaluate as harness
from codemonkeys.swebench.dataset import harness_row, load_dataset, select
from codemonkeys.swebench.evaluate import EMPTY, Verdict
from codemonkeys.swebench.evaluate_ray import grader
from codemonkeys.swebench.jobs import (
    DATASET_FILE,
    image_aware_solver,
    problems_from_rows,
    record_dataset,
)

log = logging.getLogger(__name__)

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
    ray: str | None = None
    """A Ray cluster's address (``--ray``): problems run as tasks on its nodes."""


def load_rows(opts: SwebenchRunOptions) -> list[dict[str, Any]]:
    rows = load_dataset(opts.dataset, split=opts.split)
    return select(
        rows,
        ids_file=opts.ids_file,
        ids=opts.ids,
        regex=opts.regex,
        slice_=opts.slice,
        shuffle_seed=opts.shuffle_seed,
    )


def write_predictions(rt: Runtime, path: Path | None = None) -> Path:
    """predictions.jsonl (harness format) from every finished problem of the run."""
    path = path or rt.store.root / PREDICTIONS_FILE
    selections: dict[str, str] = {}
    for pid in rt.store.problem_ids():
        result = rt.store.record_data(pid, Record.RESULT)
        if result:
            selections[pid] = result.get("chosen_patch") or ""
    return export_predictions(selections, path, MODEL_NAME)


def run_swebench(
    opts: SwebenchRunOptions,
    config: Config,
    observer: Observer,
    *,
    stop: threading.Event | None = None,
) -> RunSummary:
    """Run the selected problems; status.json and the returned summary say how it ended.
    ``stop``: the job's stop flag (set by interrupts.JobSignals at the CLI entry)."""
    rows = load_rows(opts)
    rt = open_run(opts.run_dir, config, stop=stop)
    require_docker(rt)
    rt.observer = observer
    record_dataset(rt.store, rows, opts.dataset)

    failed: list[ProblemResult] = []
    with observer.running(len(rows), rt.costs, config.run.max_cost_usd):
        results = execute(
            ray_options(opts.ray, config),
            rt,
            problems_from_rows(rt, rows, failed),
            solve=image_aware_solver(opts.remove_images or config.run.remove_images_after),
        )
        summary = write_status(rt, failed + results, total=len(rows))
        observer.run_status(summary.status)
    if summary.status == "disk_full":
        rt.close()
        return summary
    path = write_predictions(rt)
    observer.message(f"predictions: {path}")
    if summary.status == "budget_exhausted":
        observer.message(
            f"cost cap reached (${rt.costs.total:.2f}); raise --max-cost and rerun to continue"
        )
    rt.close()
    return summary


# -- evaluation ------------------------------------------------------------------------
EVALUATION_FILE = Record.EVALUATION.file


def _patches_to_grade(
    store: RunStore,
    pid: str,
    identify: Callable[[str], str],
    *,
    candidates: bool,
    intermediate: bool = False,
) -> dict[str, str]:
    """The distinct patches of one problem to grade, keyed by ``identify`` (the run's
    candidate ids, ``run_patches.patch_identity``), the chosen patch first (so it keeps its
    harness run, and its cached verdict, across reruns): with ``candidates``, selection's
    candidates and each trajectory's final patch (coverage); with ``intermediate`` every
    intermediate edit too (the serial-scaling curve, at many more harness runs)."""
    chosen = store.record_data(pid, Record.RESULT).get("chosen_patch") or ""
    patches: dict[str, str] = {}
    if chosen.strip():
        patches[identify(chosen)] = chosen
    if candidates:
        sel = store.record_data(pid, Record.SELECTION)
        others = {identify(c["patch"]): c["patch"] for c in sel.get("candidates", [])}
        others.update(patches_for_grading(store.problem_dir(pid), intermediate=intermediate))
        for cid, patch in sorted(others.items()):
            if patch.strip():
                patches.setdefault(cid, patch)
    return patches


def _label_recorded_ids(
    store: RunStore, pid: str, labels: dict[str, bool | None], identify: Callable[[str], str]
) -> None:
    """Selection's records name candidates by the id they got when written; where another
    record named the same patch otherwise, give that id its patch's verdict too, so the
    report finds a label for every recorded candidate."""
    for c in store.record_data(pid, Record.SELECTION).get("candidates", []):
        cid = identify(c["patch"])
        if c.get("id") and c["id"] != cid and cid in labels:
            labels.setdefault(c["id"], labels[cid])


def row_digest(row: dict[str, Any]) -> str:
    """What a verdict depends on besides the patch: the row the harness grades with."""
    text = json.dumps(harness_row(row), sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _grading_seconds(store: RunStore, pid: str, graded: dict[str, Any]) -> float:
    """The machine seconds grading this problem took, summed over evaluate invocations."""
    previous = store.read_json(store.problem_dir(pid) / EVALUATION_FILE)
    before = previous.get("grading_seconds", 0.0) if isinstance(previous, dict) else 0.0
    spent = sum(v.seconds for v in graded.values())
    return round((before if isinstance(before, int | float) else 0.0) + spent, 3)


def _known_verdicts(store: RunStore, pid: str, digest: str) -> dict[str, bool]:
    """Verdicts an earlier evaluation against the same row already has (graded ones only:
    the ungraded are graded again; a changed row grades everything again)."""
    previous = store.read_json(store.problem_dir(pid) / EVALUATION_FILE)
    if not isinstance(previous, dict) or previous.get("row_digest") != digest:
        return {}
    labels = previous.get("candidates")
    if not isinstance(labels, dict):
        return {}
    return {str(k): v for k, v in labels.items() if isinstance(v, bool)}


def evaluation_record(
    chosen_patch: str, verdicts: dict[str, Any], identify: Callable[[str], str] | None = None
) -> dict[str, Any]:
    """problems/<id>/evaluation.json: ``verdict`` is resolved / unresolved / ungraded;
    ``chosen`` the same as a boolean, null when ungraded (with the ``reason``);
    ``candidates`` every graded patch by identity (``identify``, default
    ``candidate_id``; null: ungraded, see ``ungraded``)."""
    identify = identify or candidate_id
    chosen = verdicts[identify(chosen_patch)] if chosen_patch.strip() else EMPTY
    record: dict[str, Any] = {
        "verdict": "ungraded"
        if chosen.resolved is None
        else ("resolved" if chosen.resolved else "unresolved"),
        "chosen": chosen.resolved,
        "chosen_status": chosen.status,
        "candidates": {cid: v.resolved for cid, v in verdicts.items()},
    }
    if chosen.resolved is None:
        record["reason"] = chosen.reason
    ungraded = {cid: v.reason for cid, v in verdicts.items() if v.resolved is None}
    if ungraded:
        record["ungraded"] = ungraded
    return record


def read_dataset_rows(run_dir: Path) -> list[dict[str, Any]]:
    """The dataset rows a run recorded (``swebench run`` and ``ensemble`` both do)."""
    if not run_dir.is_dir():
        raise FileNotFoundError(f"no run directory at {run_dir}")
    rows = list(read_jsonl(run_dir / DATASET_FILE))
    if not rows:
        raise FileNotFoundError(
            f"{run_dir / DATASET_FILE} is missing: {run_dir} is not a run made by "
            "`codemonkeys swebench run` or `codemonkeys ensemble`"
        )
    return rows


def _grader(ray: str | None, local: Callable[..., Any]) -> Callable[..., Any]:
    """``local`` (grade_candidates), or each problem graded on a node of the cluster."""
    if ray is None:
        return local
    return grader(RayOptions(address=ray))


def _known_verdict(resolved: bool) -> Verdict:
    """An earlier evaluation's verdict, as the harness would give it again."""
    return Verdict(resolved=resolved, status="resolved" if resolved else "unresolved")


def _count(summary: dict[str, Any], pid: str, record: dict[str, Any], *, candidates: bool) -> None:
    """Add one problem's evaluation record to the run's evaluation summary."""
    if record["verdict"] == "ungraded":
        summary["ungraded"] += 1
        log.warning("%s was not graded: %s", pid, record["reason"])
    else:
        summary["graded"] += 1
        summary["resolved"] += record["verdict"] == "resolved"
    if candidates and any(v is True for v in record["candidates"].values()):
        summary["covered"] += 1


def evaluate_run(
    run_dir: Path,
    *,
    candidates: bool = True,
    intermediate: bool = False,
    max_workers: int = 2,
    ray: str | None = None,
) -> dict[str, Any]:
    """Grade the chosen patches and each distinct final candidate with the official harness,
    each distinct patch once (``intermediate``: every intermediate edit too; ``ray``: on a
    cluster's nodes); writes problems/<id>/evaluation.json, returns a summary. Patches graded
    earlier are not sent again; ungraded ones (image gone, harness failure) are retried."""
    by_id = {r["instance_id"]: r for r in read_dataset_rows(run_dir)}
    store = RunStore(run_dir)
    chosen: dict[str, str] = {}
    patches: dict[str, dict[str, str]] = {}
    known: dict[str, dict[str, bool]] = {}
    identities: dict[str, Callable[[str], str]] = {}
    for pid in store.problem_ids():
        if pid not in by_id:
            continue
        chosen[pid] = store.record_data(pid, Record.RESULT).get("chosen_patch") or ""
        identities[pid] = patch_identity(store.problem_dir(pid))
        patches[pid] = _patches_to_grade(
            store, pid, identities[pid], candidates=candidates, intermediate=intermediate
        )
        known[pid] = _known_verdicts(store, pid, row_digest(by_id[pid]))
    export_predictions(chosen, run_dir / PREDICTIONS_FILE, MODEL_NAME)
    to_send = {
        pid: [(cid, p) for cid, p in ps.items() if cid not in known[pid]]
        for pid, ps in patches.items()
    }
    graded = _grader(ray, harness.grade_candidates)(  # looked up per call: tests record it
        {pid: ps for pid, ps in to_send.items() if ps},
        [by_id[i] for i in chosen],
        run_id_prefix=f"{run_dir.name}.eval",
        max_workers=max_workers,
        report_dir=run_dir / "evaluation",
    )
    summary: dict[str, Any] = {"problems": len(chosen), "graded": 0, "resolved": 0}
    summary.update({"ungraded": 0, "covered": 0 if candidates else None})
    for pid in chosen:
        verdicts = {
            cid: graded.get(pid, {}).get(cid) or _known_verdict(known[pid][cid])
            for cid in patches[pid]
        }
        record = evaluation_record(chosen[pid], verdicts, identities[pid])
        seconds = _grading_seconds(store, pid, graded.get(pid, {}))
        record.update(row_digest=row_digest(by_id[pid]), grading_seconds=seconds)
        _label_recorded_ids(store, pid, record["candidates"], identities[pid])
        store.write_json(store.problem_dir(pid) / EVALUATION_FILE, record)
        _count(summary, pid, record, candidates=candidates)
    store.write_json(Path(EVALUATION_FILE), summary)
    return summary
