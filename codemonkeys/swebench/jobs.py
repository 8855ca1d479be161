"""The plumbing every job that solves dataset rows shares (``swebench run``, ``ensemble``):
rows as problems (a bad row is a failed result, the others go on), the instance image made
sure of before a problem (and removed after it when asked), and the rows kept in
``dataset.jsonl``. Beside the dataset reader it parses rows with.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from codemonkeys.candidates import CandidateSet
from codemonkeys.pipeline import Runtime, result_fingerprint, solve_problem
from codemonkeys.problem import Gold, Problem
from codemonkeys.records import Record
from codemonkeys.run_records import ProblemResult, Status
from codemonkeys.sandbox.base import SandboxError
from codemonkeys.sandbox.kinds import engine_client, sandbox_kind
from codemonkeys.store import RunStore, atomic_write_text, read_jsonl
from codemonkeys.swebench.dataset import DatasetError, to_problem
from codemonkeys.swebench.images import ImageMissing, ensure_instance_image, remove_instance_image

DATASET_FILE = "dataset.jsonl"


def problems_from_rows(
    rt: Runtime, rows: list[dict[str, Any]], failed: list[ProblemResult]
) -> Iterator[tuple[Problem, Gold | None]]:
    """Rows as problems, lazily; a row that cannot become a problem is a failed result
    naming the row and the field, and the others go on."""
    for row in rows:
        try:
            problem, gold = to_problem(row)
        except DatasetError as e:
            rid = str(row.get("instance_id") or "row")
            result = ProblemResult(id=rid, status="failed", error=str(e))
            rt.store.save_record(rid, Record.RESULT, result, result_fingerprint(rt.config))
            rt.observer.problem_done(result)
            failed.append(result)
            continue
        rt.store.write_json(rt.store.problem_dir(problem.id) / Record.GOLD.file, gold)
        yield problem, gold


def image_aware_solver(remove_images: bool) -> Callable[..., ProblemResult]:
    """solve_problem preceded by making sure the instance image is there (one pull
    attempt), and optionally followed by removing it."""

    def solve(
        rt: Runtime, problem: Problem, gold: Gold | None, candidates: CandidateSet | None = None
    ) -> ProblemResult:
        client = None
        if sandbox_kind(rt.config.sandbox.kind).needs_engine and problem.image:
            try:
                client = engine_client(rt.config.sandbox.kind)
                ensure_instance_image(problem.image, client)
            except (ImageMissing, SandboxError) as e:  # this problem's, the others go on
                status: Status = "failed" if isinstance(e, ImageMissing) else "error"
                result = ProblemResult(id=problem.id, status=status, error=str(e))
                rt.store.save_record(
                    problem.id, Record.RESULT, result, result_fingerprint(rt.config)
                )
                rt.observer.problem_done(result)
                return result
        result = solve_problem(rt, problem, gold, candidates=candidates)
        if remove_images and client is not None and problem.image and result.finished:
            remove_instance_image(problem.image, client)
        return result

    return solve


def record_dataset(store: RunStore, rows: list[dict[str, Any]], source: str) -> None:
    """Keep the selected rows (gold included) in ``dataset.jsonl``, merged with those of
    earlier invocations: what ``swebench evaluate`` grades against and metrics read; never
    read by prompt-building code. Every run kind that solves dataset rows records them."""
    existing = {r.get("instance_id"): r for r in read_jsonl(store.root / DATASET_FILE)}
    existing.update({r["instance_id"]: r for r in rows if r.get("instance_id")})
    store.write_json(Path("dataset.json"), {"source": source, "count": len(existing)})
    text = "".join(json.dumps(r, default=str) + "\n" for r in existing.values())
    atomic_write_text(store.root / DATASET_FILE, text)
