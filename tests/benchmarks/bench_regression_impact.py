"""Benchmark: coverage-guided narrowing of the regression verifier (``selection.regression_impact``).

On each shared SWE-bench Verified instance whose image is built
(``../shared/data/instances``), the regression verifier runs twice in the same process on
the same work: the original code twice and one candidate (the row's patch, standing in for a
candidate's diff) once,

- **whole files** (the baseline: ``selection.regression_impact = false``): the discovered
  test files as they are;
- **impact**: one traced run of those files on the original code first, then the two
  original runs and the candidate's on the tests that executed the edit.

Per instance: seconds of the whole verifier, of the impact run and of one original run;
tests run and ``baseline_passing``; the candidate's verdict (the same in both is expected:
the row's patch breaks nothing); the tracer's cost (the traced run against an untraced run of
the same whole files); and, scoring only, how many of the harness's PASS_TO_PASS tests in the
chosen files each mode runs (gold tests never reach the verifier).

The tracer's cost (unless ``--no-tracer-cost``): the whole files' command run untraced and
traced twice each, one after the other in one sandbox, and every test's outcome compared
(a test whose two untraced runs agree and whose traced runs both differ is counted as
changed by the tracer).

Run: ``uv run python tests/benchmarks/bench_regression_impact.py [--instances ID ...]``.
Last line: JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from codemonkeys.candidates import Candidate  # noqa: E402
from codemonkeys.config import Config  # noqa: E402
from codemonkeys.execution import ExecutionCache  # noqa: E402
from codemonkeys.selection.regression import RegressionRecord, run_regression  # noqa: E402
from codemonkeys.selection.regression_impact import function_id  # noqa: E402

DATA = ROOT.parent / "shared" / "data"


def _p2p(row: dict) -> list[str]:
    raw = row.get("PASS_TO_PASS") or "[]"
    return json.loads(raw) if isinstance(raw, str) else list(raw)


def _figures(rec: RegressionRecord, p2p: list[str], whole_files: list[str]) -> dict:
    runs = [r.seconds for r in rec.original_runs]
    cand = next(iter(rec.candidates.values()), None)
    impact = rec.impact
    if impact is not None and impact.status == "narrowed":
        kept = set(impact.tests_kept)
        guards = sum(1 for t in p2p if function_id(t) in kept)
    else:
        guards = sum(1 for t in p2p if t.split("::", 1)[0] in whole_files)
    return {
        "seconds": rec.seconds,
        "original_run_seconds": statistics.median(runs) if runs else None,
        "candidate_run_seconds": cand.run.seconds if cand and cand.run else None,
        "tests_run": len(rec.original_runs[0].outcomes) if rec.original_runs else 0,
        "baseline_passing": rec.baseline_passing,
        "candidate": f"{cand.status}:{len(cand.regressions)}" if cand else None,
        "p2p_in_chosen_files_run": guards,
        "skipped_reason": rec.skipped_reason,
        "impact": None
        if impact is None
        else {
            "status": impact.status,
            "reason": impact.reason,
            "seconds": impact.seconds,
            "tests_traced": impact.tests_traced,
            "tests_kept": len(impact.tests_kept),
            "tests_cut": len(impact.tests_cut),
            "files_executing": len(impact.files_executing),
            "functions": impact.functions,
        },
    }


def tracer_cost(pool, candidates: list[Candidate], command: str, cfg: Config) -> dict:
    """The whole files' command untraced and traced, one after the other in one sandbox,
    in the order traced, untraced, untraced, traced (the first run also compiles bytecode:
    this order charges that to the tracer); the outcomes of every test compared."""
    from codemonkeys.selection.regression import run_suite
    from codemonkeys.selection.regression_discovery import JUNIT_PATH
    from codemonkeys.selection.regression_impact import edited_files, trace_run
    from codemonkeys.selection.regression_outcomes import parse_junit
    from codemonkeys.selection.regression_plan import Plan, SandboxRepo

    plan = Plan(source="discovered", framework="pytest", command=command, test_files=[],
                reasons={}, junit=True)  # fmt: skip
    timeout = cfg.selection.regression_timeout_s
    seconds: dict[bool, list[float]] = {True: [], False: []}
    outcomes: dict[bool, list[dict]] = {True: [], False: []}
    with pool.lease() as sb:
        edited = edited_files(candidates, SandboxRepo(sb).read, cfg.context.test_dirs)
        watched = {p: e.watch() for p, e in edited.items()}
        for traced in (True, False, False, True):
            if traced:
                run = trace_run(sb, plan, watched, timeout)
                xml = sb.read_file(f"{sb.workdir.rstrip('/')}/{JUNIT_PATH}").decode()
                seconds[True].append(run.seconds)
                outcomes[True].append(parse_junit(xml))
            else:
                plain = run_suite(sb, None, command, timeout, junit=True)
                seconds[False].append(plain.seconds)
                outcomes[False].append(plain.outcomes)
    untraced, traced_s = statistics.median(seconds[False]), statistics.median(seconds[True])
    differ = sorted(
        t for t, o in outcomes[False][0].items()
        if all(run.get(t) != o for run in outcomes[True]) and outcomes[False][1].get(t) == o
    )  # fmt: skip
    return {
        "untraced_seconds": seconds[False],
        "traced_seconds": seconds[True],
        "ratio": round(traced_s / untraced, 3) if untraced else None,
        "tests": len(outcomes[False][0]),
        "outcomes_changed_by_tracer": differ,
    }


def measure(row: dict, cfg: Config, with_cost: bool) -> dict | None:
    from codemonkeys.sandbox import SandboxPool, image_exists
    from codemonkeys.sandbox.spec import spec_from_config
    from codemonkeys.swebench.dataset import to_problem

    problem, _ = to_problem(row)
    spec = spec_from_config(problem, cfg)
    if not image_exists(spec.image):
        print(f"{row['instance_id']}: image not built, skipped")
        return None
    candidates = [Candidate(id="patch", patch=row["patch"])]
    pool = SandboxPool(spec, size=2)
    out: dict = {}
    try:
        for mode, impact in (("whole", False), ("impact", True)):
            sel = cfg.selection.model_copy(update={"regression_impact": impact})
            cache = ExecutionCache(pool.lease, timeout=sel.regression_timeout_s)  # one per mode
            rec = run_regression(candidates, cache, sel, test_dirs=cfg.context.test_dirs, workers=1)
            out[mode] = rec
        cost = None
        if with_cost and out["whole"].framework == "pytest" and out["whole"].command:
            cost = tracer_cost(pool, candidates, out["whole"].command, cfg)
    finally:
        pool.close()
    p2p = _p2p(row)
    whole = _figures(out["whole"], p2p, out["whole"].test_files)
    narrowed = _figures(out["impact"], p2p, out["whole"].test_files)
    result = {
        "whole": whole,
        "impact": narrowed,
        "p2p_in_chosen_files": sum(
            1 for t in p2p if t.split("::", 1)[0] in out["whole"].test_files
        ),
        "seconds_ratio": round(narrowed["seconds"] / whole["seconds"], 3)
        if whole["seconds"]
        else None,
    }
    if cost is not None:
        result["tracer_cost"] = cost
        result["tracer_cost_ratio"] = cost["ratio"]
    print(f"{row['instance_id']}: {json.dumps(result)}", flush=True)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--instances", nargs="*", default=[], help="instance ids (default: all)")
    ap.add_argument("--no-tracer-cost", action="store_true", help="skip the traced/untraced timing")
    args = ap.parse_args()
    cfg = Config()
    rows = [json.loads(x) for x in (DATA / "instances" / "rows.jsonl").open()]
    rows = [r for r in rows if not args.instances or r["instance_id"] in args.instances]
    results = {
        r["instance_id"]: res
        for r in rows
        if (res := measure(r, cfg, not args.no_tracer_cost)) is not None
    }
    total = {m: sum(v[m]["seconds"] for v in results.values()) for m in ("whole", "impact")}
    figures = {
        "instances": len(results),
        "seconds_whole": round(total["whole"], 1),
        "seconds_impact": round(total["impact"], 1),
        "seconds_ratio": round(total["impact"] / total["whole"], 3) if total["whole"] else None,
        "seconds_ratio_median": statistics.median(
            v["seconds_ratio"] for v in results.values() if v["seconds_ratio"]
        )
        if results
        else None,
        "tracer_cost_ratio_median": statistics.median(
            v["tracer_cost_ratio"] for v in results.values() if "tracer_cost_ratio" in v
        )
        if any("tracer_cost_ratio" in v for v in results.values())
        else None,
        "narrowed": sum(
            1 for v in results.values() if (v["impact"]["impact"] or {}).get("status") == "narrowed"
        ),
        "outcomes_changed_by_tracer": sum(
            len(v.get("tracer_cost", {}).get("outcomes_changed_by_tracer", []))
            for v in results.values()
        ),
        "verdicts_agree": sum(
            1 for v in results.values() if v["whole"]["candidate"] == v["impact"]["candidate"]
        ),
        "per_instance": {
            k: {
                "seconds": [v["whole"]["seconds"], v["impact"]["seconds"]],
                "tests_run": [v["whole"]["tests_run"], v["impact"]["tests_run"]],
                "baseline_passing": [
                    v["whole"]["baseline_passing"],
                    v["impact"]["baseline_passing"],
                ],
                "p2p_run": [
                    v["whole"]["p2p_in_chosen_files_run"],
                    v["impact"]["p2p_in_chosen_files_run"],
                ],
            }
            for k, v in results.items()
        },
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
