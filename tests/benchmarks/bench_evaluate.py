"""Benchmark: ``codemonkeys swebench evaluate`` against the plain official harness, same
predictions, same run.

The work: every shared instance in ``../shared/data/instances`` whose image is built
(default; ``--instances`` to choose) x the prediction sets gold (the rows' ``patch``),
noop, empty, gemini, haiku (``verify/preds_<set>.jsonl``).

- plain: ``python -m swebench.harness.run_evaluation`` once per set, one after another,
  ``--max_workers 2``, as ``verify/run_harness.sh`` (and a user) runs it;
- ours: the same patches as one run directory's candidates (one problem per instance),
  graded by ``codemonkeys swebench evaluate RUN --workers 2`` as a user runs it.

Both grade every non-empty prediction in a fresh container of its instance image with
the harness's own eval script, log parser and grading; ours kills each container when its
verdict is written instead of waiting for ``docker stop --time=15`` (PID 1 ignores
SIGTERM), and grades every set in one harness process.

Figures: ``verdict_mismatches`` (resolved or not, per set x instance; must be 0),
``report_mismatches`` (graded patches whose per-test outcomes differ between the two
report.json), both wall times and ``speedup_vs_harness`` = plain / ours, and how many
patches each graded in a container (``swebench evaluate`` grades each distinct patch once:
two sets' patches that produce the same files are graded once).

Run: ``uv run python tests/benchmarks/bench_evaluate.py [--instances ID ...] [--sets ...]``.
Last output line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from codemonkeys.sandbox.docker_client import docker_client  # noqa: E402
from codemonkeys.swebench.images import image_present, official_image_name  # noqa: E402
from tests.grading_compare import (  # noqa: E402
    SETS,
    compare,
    make_run,
    our_containers,
    plain_harness,
    prediction_sets,
    run_ours,
)

DATA = ROOT.parent / "shared" / "data" / "instances"


def _rows(ids: list[str] | None) -> list[dict]:
    rows = [json.loads(line) for line in (DATA / "rows.jsonl").read_text().splitlines()]
    if ids:
        rows = [r for r in rows if r["instance_id"] in ids]
    client = docker_client()
    built = [r for r in rows if image_present(official_image_name(r["instance_id"]), client)]
    for r in rows:
        if r not in built:
            print(f"skipping {r['instance_id']}: its image is not built", flush=True)
    return built


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", nargs="*", help="instance ids (default: every built one)")
    parser.add_argument("--sets", nargs="*", default=list(SETS), choices=SETS)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--keep", type=Path, help="keep the logs here (default: a temp dir)")
    args = parser.parse_args()
    rows = _rows(args.instances)
    if not rows:
        sys.exit("no instance image is built: run ../shared/data/instances/build.sh")
    preds = prediction_sets(rows, DATA / "verify", args.sets)
    work = args.keep or Path(tempfile.mkdtemp(prefix="bench-evaluate-"))
    print(f"{len(rows)} instances x {len(preds)} sets; logs in {work}", flush=True)

    make_run(work / "run", rows, preds)
    ours_s = run_ours(work / "run", workers=args.workers)
    print(f"ours  (codemonkeys swebench evaluate): {ours_s:.1f} s", flush=True)
    plain_s = plain_harness(rows, preds, work / "plain", max_workers=args.workers)
    print(f"plain (swebench.harness.run_evaluation per set): {plain_s:.1f} s", flush=True)

    result = compare(work / "plain", work / "run", preds)
    for line in result["table"]:
        flag = "  MISMATCH" if line in result["verdict_mismatches"] else ""
        print(
            f"{line['set']:7} {line['instance']:28} plain={line['plain']:10} ours={line['ours']}{flag}"
        )
    graded = sum(1 for line in result["table"] if line["plain"] != "empty")
    ours_graded = our_containers(work / "run")
    figures = {
        "instances": [r["instance_id"] for r in rows],
        "sets": list(preds),
        "predictions": len(result["table"]),
        "harness_containers": graded,
        "evaluate_containers": ours_graded,
        "verdict_mismatches": len(result["verdict_mismatches"]),
        "report_mismatches": len(result["report_mismatches"]),
        "harness_wall_s": round(plain_s, 1),
        "evaluate_wall_s": round(ours_s, 1),
        "speedup_vs_harness": round(plain_s / ours_s, 2),
        "workers": args.workers,
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
