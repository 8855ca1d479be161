"""Benchmark: the machine time of one real problem end to end, and where it goes.

One shared instance (default sphinx-doc__sphinx-8595, ``../shared/data/instances``, its image
built) through ``codemonkeys swebench run`` at the paper's settings (the defaults: 10
trajectories, 8 test and 8 edit attempts, selection with its verifiers), then
``codemonkeys swebench evaluate``. The model is a scripted policy that knows only its prompt
and answers at once (``tests/fixtures/policies/real_attempts.py``: reproduces the issue from
its text, uses a realistic number of attempts, never reads a gold field), so every second
measured is machine time: the pipeline's own work, the sandboxes and the harness.

The split is measured the same way for every checkout, from outside the product: the run
executes in a child process that wraps ``SandboxPool`` (opening a container, each lease =
runs, each reset, closing) and the pipeline's per-stage timer, so the baseline needs no
recording of its own. Sandbox figures are container-seconds (parallel trajectories add up);
the phase figures are wall seconds.

``--baseline PATH``: a checkout of older code (e.g. ``git worktree add /tmp/old c71d4d8``)
runs the same work in the same run, before this checkout's; both use this environment's
interpreter and packages with the checkout first on ``sys.path``.

Run: ``uv run python tests/benchmarks/bench_problem_real.py [--baseline PATH]``.
Last output line: one JSON object; ``machine_s_per_problem`` and its split per side, and
the ratios baseline / this checkout.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data" / "instances"
POLICY = ROOT / "tests" / "fixtures" / "policies" / "real_attempts.py"
DEFAULT_INSTANCE = "sphinx-doc__sphinx-8595"
PHASES = ("context", "generation", "selection", "teardown")
KINDS = ("open", "reset", "runs", "close")


# --------------------------------------------------------------------------- child side


class Meter:
    """Container-seconds per (phase, kind), counted by wrappers around ``SandboxPool``."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.phase = "teardown"  # outside a stage: the pool closing after the stages
        self.seconds: dict[str, dict[str, float]] = defaultdict(lambda: dict.fromkeys(KINDS, 0.0))
        self.counts: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(KINDS, 0))

    def add(self, kind: str, seconds: float) -> None:
        with self.lock:
            self.seconds[self.phase][kind] += seconds
            self.counts[self.phase][kind] += 1

    def timing(self, kind: str, fn: Any) -> Any:
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            start = time.monotonic()
            try:
                return fn(*args, **kwargs)
            finally:
                self.add(kind, time.monotonic() - start)

        return wrapped


def _instrument(meter: Meter) -> None:
    """Wrap the pool's open / lease / reset / close and the pipeline's stage timer (the
    same names in every checkout this benchmark compares)."""
    from codemonkeys import pipeline
    from codemonkeys.sandbox import pool

    cls = pool.SandboxPool
    cls._create = meter.timing("open", cls._create)  # type: ignore[method-assign]
    cls._release = meter.timing("reset", cls._release)  # type: ignore[method-assign]
    cls._discard = meter.timing("close", cls._discard)  # type: ignore[method-assign]
    lease = cls.lease

    @contextlib.contextmanager
    def timed_lease(self: Any) -> Any:
        with lease(self) as box:
            start = time.monotonic()
            try:
                yield box
            finally:
                meter.add("runs", time.monotonic() - start)

    cls.lease = timed_lease  # type: ignore[method-assign]
    stage_timer = pipeline.timed

    @contextlib.contextmanager
    def phase(*args: Any, **kwargs: Any) -> Any:
        meter.phase = args[3] if len(args) > 3 else kwargs["stage"]
        try:
            with stage_timer(*args, **kwargs):
                yield
        finally:
            meter.phase = "teardown"

    pipeline.timed = phase  # type: ignore[assignment]


def _cli(*args: str) -> float:
    """One ``codemonkeys`` command in this process; its wall seconds."""
    from codemonkeys.cli.app import main

    sys.argv = ["codemonkeys", *args]
    start = time.monotonic()
    try:
        main()
    except SystemExit as e:
        if e.code not in (0, None):
            raise RuntimeError(f"codemonkeys {' '.join(args)} exited {e.code}") from None
    return time.monotonic() - start


def child(run_dir: Path, dataset: Path, policy: Path) -> None:
    import codemonkeys

    meter = Meter()
    _instrument(meter)
    run_s = _cli(
        "swebench", "run", "--dataset", str(dataset), "--run-dir", str(run_dir),
        "--model", f"scripted:{policy}", "--quiet",
    )  # fmt: skip
    grading_s = _cli("swebench", "evaluate", str(run_dir))
    [problem] = (run_dir / "problems").iterdir()
    timing = json.loads((problem / "timing.json").read_text())["data"]
    result = json.loads((problem / "result.json").read_text())["data"]
    out = {
        "code": str(Path(codemonkeys.__file__).resolve().parents[1]),
        "status": result["status"],
        "candidates": len(result.get("candidates") or []),
        "swebench_run_s": round(run_s, 2),
        "grading_s": round(grading_s, 2),
        "phase_wall_s": {k: round(v, 2) for k, v in timing["seconds"].items()},
        "sandbox_s": {
            p: {k: round(v, 2) for k, v in kinds.items()} for p, kinds in meter.seconds.items()
        },
        "sandbox_counts": {p: dict(kinds) for p, kinds in meter.counts.items()},
        "recorded_sandbox_s": timing.get("sandbox"),
        "evaluation": json.loads((problem / "evaluation.json").read_text()),
    }
    print(json.dumps(out))


# --------------------------------------------------------------------------- parent side


def _side(code: Path, row: dict, work: Path) -> dict:
    """The whole problem with the code of checkout ``code``, in a child process."""
    work.mkdir(parents=True)
    dataset = work / "rows.jsonl"
    dataset.write_text(json.dumps(row) + "\n")
    env = {**os.environ, "PYTHONPATH": str(code), "COLUMNS": "200"}
    env["CODEMONKEYS_CONTEXT__RELEVANCE_CACHE_DIR"] = str(work / "relevance-cache")
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", str(work / "run")]
    cmd += ["--dataset", str(dataset), "--policy", str(POLICY)]
    proc = subprocess.run(cmd, cwd=code, env=env, capture_output=True, text=True, timeout=3600)
    if proc.returncode != 0:
        raise RuntimeError(f"{code}: the run failed\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    side = json.loads(proc.stdout.strip().splitlines()[-1])
    if Path(side["code"]) != code.resolve():
        raise RuntimeError(f"the child ran the code at {side['code']}, not {code}")
    return side


def _figures(side: dict) -> dict:
    """machine_s_per_problem and its split."""
    split = {}
    for phase in PHASES:
        sandbox = side["sandbox_s"].get(phase, dict.fromkeys(KINDS, 0.0))
        split[phase] = {
            "wall_s": side["phase_wall_s"].get(phase),
            **{f"sandbox_{k}_s": v for k, v in sandbox.items()},
        }
    return {
        "machine_s_per_problem": round(side["swebench_run_s"] + side["grading_s"], 1),
        "swebench_run_s": side["swebench_run_s"],
        "grading_s": side["grading_s"],
        "split": split,
        "status": side["status"],
        "candidates": side["candidates"],
        "leases": sum(c["runs"] for c in side["sandbox_counts"].values()),
        "containers_opened": sum(c["open"] for c in side["sandbox_counts"].values()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instance", default=DEFAULT_INSTANCE)
    parser.add_argument("--baseline", type=Path, help="a checkout of older code to compare")
    parser.add_argument("--keep", type=Path, help="keep the runs here (default: a temp dir)")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--dataset", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--policy", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child, args.dataset, args.policy)
    rows = {
        json.loads(line)["instance_id"]: json.loads(line)
        for line in (DATA / "rows.jsonl").read_text().splitlines()
    }
    row = rows[args.instance]
    work = args.keep or Path(tempfile.mkdtemp(prefix="bench-problem-"))
    sides = {}
    if args.baseline:
        print(f"baseline: {args.baseline}", flush=True)
        sides["baseline"] = _figures(_side(args.baseline, row, work / "baseline"))
        print(json.dumps(sides["baseline"]), flush=True)
    print(f"this checkout: {ROOT}", flush=True)
    sides["new"] = _figures(_side(ROOT, row, work / "new"))
    print(json.dumps(sides["new"]), flush=True)
    out: dict[str, Any] = {"instance": args.instance, "runs_in": str(work), **sides["new"]}
    if "baseline" in sides:
        out["baseline"] = sides["baseline"]
        old, new = sides["baseline"], sides["new"]
        out["machine_speedup_vs_baseline"] = round(
            old["machine_s_per_problem"] / new["machine_s_per_problem"], 2
        )
        out["grading_speedup_vs_baseline"] = round(old["grading_s"] / new["grading_s"], 2)
        out["swebench_run_speedup_vs_baseline"] = round(
            old["swebench_run_s"] / new["swebench_run_s"], 2
        )
    print(json.dumps(out))


if __name__ == "__main__":
    main()
