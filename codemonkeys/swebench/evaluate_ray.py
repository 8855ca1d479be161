"""``swebench evaluate --ray``: the official harness run per problem on the cluster's nodes.

Each problem's patches are graded by a task on a node with the resource (where its
instance image is, or can be pulled); the verdicts come back to the driver, which writes
``evaluation.json`` as a local evaluation does. The harness's own logs stay on the node.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from codemonkeys.config import Config
from codemonkeys.distributed.cluster import connect
from codemonkeys.distributed.driver import RayOptions
from codemonkeys.swebench.evaluate import Verdict, grade_candidates
from codemonkeys.tempdirs import temp_dir

Grade = Callable[..., dict[str, dict[str, Verdict]]]


def _grade_here(
    instance_id: str,
    patches: Sequence[tuple[str, str]],
    row: Mapping[str, Any],
    run_id_prefix: str,
) -> dict[str, Verdict]:
    with temp_dir("eval") as reports:
        graded = grade_candidates(
            {instance_id: list(patches)},
            [row],
            run_id_prefix=run_id_prefix,
            max_workers=1,
            report_dir=reports,
            pull=True,
        )
    return graded.get(instance_id, {})


def grader(options: RayOptions) -> Grade:
    """A ``grade_candidates`` that spreads the problems over the cluster."""

    def grade(
        candidates: Mapping[str, Sequence[tuple[str, str]]],
        dataset_rows: Sequence[Mapping[str, Any]],
        *,
        run_id_prefix: str,
        report_dir: str | Path,
        **_: Any,
    ) -> dict[str, dict[str, Verdict]]:
        import ray  # deferred: ray loads only when used

        connect(options.address, Config())
        rows = {r["instance_id"]: r for r in dataset_rows}
        task = ray.remote(_grade_here).options(
            resources={options.resource: 1}, num_cpus=0, max_retries=options.max_attempts - 1
        )
        refs = {
            iid: task.remote(iid, list(ps), rows[iid], run_id_prefix)
            for iid, ps in candidates.items()
        }
        out: dict[str, dict[str, Verdict]] = {}
        for iid, ref in refs.items():
            try:
                out[iid] = ray.get(ref)
            except ray.exceptions.RayError as e:  # ungraded, retried by the next evaluate
                reason = f"grading on the cluster failed: {type(e).__name__}"
                out[iid] = {
                    label: Verdict(resolved=None, status="error", reason=reason)
                    for label, _patch in candidates[iid]
                }
        return out

    return grade
