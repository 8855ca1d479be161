"""``codemonkeys swebench run --estimate``: the relevance scan's tokens and price for each
selected problem and in total, per model, with and without batch and prefilter, before
anything is spent. Each problem's tree is read from its instance image when the image is
on the local engine (never pulled: an absent image is reported and skipped); no model is
called and no run directory is written.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from codemonkeys.config import Config
from codemonkeys.context.files import enumerate_files
from codemonkeys.context.scan_cost import ScanCost, ScanEstimate, estimate_scan
from codemonkeys.pipeline import Observer
from codemonkeys.sandbox import spec_from_config
from codemonkeys.sandbox.kinds import engine_client, sandbox_kind
from codemonkeys.sandbox.pool import open_sandbox
from codemonkeys.swebench.dataset import DatasetError, to_problem
from codemonkeys.swebench.images import image_present


def _tree_estimate(problem: Any, config: Config, client: Any) -> ScanEstimate:
    with tempfile.TemporaryDirectory(prefix="codemonkeys-estimate-") as tmp:
        box = open_sandbox(spec_from_config(problem, config.sandbox), client=client)
        try:
            paths = box.export_repo(Path(tmp))
        finally:
            box.close()
        enum = enumerate_files(Path(tmp), paths, config.context)
        return estimate_scan(config, enum, problem.issue, Path(tmp))


def _add(total: dict[str, ScanCost], rows: list[ScanCost]) -> None:
    for c in rows:
        t = total.get(c.model)
        if t is None:
            total[c.model] = c.model_copy()
            continue
        t.files += c.files
        t.prompt_tokens += c.prompt_tokens
        t.output_tokens += c.output_tokens
        t.usd = round(t.usd + c.usd, 4)
        if t.batch_usd is not None and c.batch_usd is not None:
            t.batch_usd = round(t.batch_usd + c.batch_usd, 4)


def estimate_swebench(
    rows: list[dict[str, Any]], config: Config, observer: Observer
) -> ScanEstimate:
    """Print each problem's scan estimate and return the totals (same shape)."""
    client = None
    if sandbox_kind(config.sandbox.kind).needs_engine:
        client = engine_client(config.sandbox.kind)
    full: dict[str, ScanCost] = {}
    kept: dict[str, ScanCost] = {}
    last: ScanEstimate | None = None
    skipped = 0
    for row in rows:
        rid = str(row.get("instance_id") or "row")
        try:
            problem, _ = to_problem(row)
        except DatasetError as e:
            observer.message(f"{rid}: skipped ({e})")
            skipped += 1
            continue
        if client is not None and problem.image and not image_present(problem.image, client):
            observer.message(f"{rid}: skipped (image {problem.image} is not on this engine)")
            skipped += 1
            continue
        last = _tree_estimate(problem, config, client)
        observer.message(f"{rid}:\n{last.describe()}")
        _add(full, last.full)
        _add(kept, last.prefiltered)
    if last is None:
        raise ValueError("no problem could be estimated (see above)")
    total = last.model_copy(
        update={"full": list(full.values()), "prefiltered": list(kept.values())}
    )
    n = len(rows) - skipped
    observer.message(f"total over {n} problem(s) ({skipped} skipped):\n{total.describe()}")
    return total
