"""Benchmark: the paper's test matrix (10 candidate patches x 11 test scripts) on a small
repository, run (a) with a fresh container per script run (create, copy the repo in, apply,
run, remove: what the original implementation did) and (b) with a SandboxPool of 2 warm
containers reset between leases. Both use 2 worker threads (this machine has 2 cores) and
every run of both sides is timed (no extrapolation).

Per-run overhead = a run's wall time (lease, apply, write, run, reset) minus the script's
own time, measured inside the container around the script; reported as p50 and p95. The
physical floor is measured in the same run on a pool container: a bare ``docker exec``
round trip (``floor_exec_ms``) and a no-op through the in-container command server
(``floor_agent_ms``). Last line: one JSON object.

    uv run python tests/benchmarks/bench_sandbox.py [--fresh-runs 110] [--image IMG]
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from codemonkeys.execution import Script  # noqa: E402
from codemonkeys.sandbox import SandboxPool, SandboxSpec, clean_containers, open_sandbox  # noqa: E402
from codemonkeys.sandbox.base import Sandbox  # noqa: E402

WORKERS = 2
CALC = (
    '"""A tiny calculator."""\n\n\ndef add(a, b):\n    return a - b\n\n\n'
    "def mul(a, b):\n    return a * b\n\n\ndef neg(a):\n    return -a\n"
)
BODIES = [
    "a + b",
    "b + a",
    "sum((a, b))",
    "a - (-b)",
    "(a + b) * 1",
    "int(a) + int(b)",
    "a + b if b else a",
    "-(-a - b)",
    "a * b",
    "a + b + 0",
]
EXPECT = [
    (1, 2, 3),
    (0, 0, 0),
    (-1, 1, 0),
    (2, 2, 4),
    (10, -3, 7),
    (5, 0, 5),
    (0, 7, 7),
    (100, 200, 300),
    (-5, -5, -10),
    (3, 4, 7),
    (1, 1, 2),
]


def make_repo(root: Path) -> Path:
    repo = root / "repo"
    repo.mkdir()
    (repo / "calc.py").write_text(CALC)
    (repo / "README.md").write_text("benchmark repo\n")
    for i in range(20):  # some bulk, like a real small package
        (repo / f"mod_{i}.py").write_text(
            "".join(f"def f{j}():\n    return {j}\n\n" for j in range(50))
        )
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "b",
        "GIT_AUTHOR_EMAIL": "b@b",
        "GIT_COMMITTER_NAME": "b",
        "GIT_COMMITTER_EMAIL": "b@b",
    }
    for cmd in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "base"]):
        subprocess.run(["git", *cmd], cwd=repo, check=True, env=env)
    return repo


def patch_for(body: str) -> str:
    return (
        "diff --git a/calc.py b/calc.py\n--- a/calc.py\n+++ b/calc.py\n"
        "@@ -3,7 +3,7 @@\n \n \n def add(a, b):\n-    return a - b\n"
        f"+    return {body}\n \n \n def mul(a, b):\n"
    )


def scripts() -> list[Script]:
    out = []
    for a, b, c in EXPECT:
        out.append(
            Script(
                content=f"import sys\nfrom calc import add\nsys.exit(0 if add({a}, {b}) == {c} else 2)\n"
            )
        )
    return out


def timed_command(script: Script) -> str:
    # The script's own time, measured inside the container around the script only.
    return f't0=$(date +%s%N); {script.command("@@done")}; rc=$?; echo "@@ns $(( $(date +%s%N) - t0 ))"; exit $rc'


def one_run(sb: Sandbox, patch: str, script: Script) -> tuple[int | None, float]:
    applied = sb.apply_patch(patch)
    assert applied.ok, applied.error
    sb.write_file(script.path, script.content)
    res = sb.run(timed_command(script), timeout=60)
    m = re.search(r"@@ns (\d+)", res.output)
    assert m, res.output
    return res.exit_code, int(m.group(1)) / 1e9


def pct(values: list[float], q: float) -> float:
    """The q-quantile (0..1) of values, nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def floors(sb: Sandbox, reps: int) -> tuple[list[float], list[float]]:
    """(bare docker exec round trips, no-ops through the command server), seconds."""
    exec_s, agent_s = [], []
    for _ in range(reps):
        t = time.monotonic()
        sb.container.exec_run(["true"])  # type: ignore[attr-defined]
        exec_s.append(time.monotonic() - t)
        t = time.monotonic()
        code, _, _ = sb._sh_raw("true", 30)  # type: ignore[attr-defined]
        agent_s.append(time.monotonic() - t)
        assert code == 0
    return exec_s, agent_s


def drive(
    jobs: list[tuple[str, Script]], runner: Callable[[str, Script], tuple[int | None, float]]
) -> tuple[float, list[float], list[float], list[int | None]]:
    """Run jobs on WORKERS threads; (wall seconds, per-run latency, per-run script time, codes)."""
    q: queue.Queue[tuple[str, Script]] = queue.Queue()
    for j in jobs:
        q.put(j)
    lat: list[float] = []
    own: list[float] = []
    codes: list[int | None] = []
    lock = threading.Lock()

    def worker() -> None:
        while True:
            try:
                patch, script = q.get_nowait()
            except queue.Empty:
                return
            t = time.monotonic()
            code, script_s = runner(patch, script)
            dt = time.monotonic() - t
            with lock:
                lat.append(dt)
                own.append(script_s)
                codes.append(code)

    start = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(WORKERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.monotonic() - start, lat, own, codes


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--fresh-runs", type=int, default=110, help="fresh-container runs (default: all 110)"
    )
    ap.add_argument("--floor-reps", type=int, default=30)
    ap.add_argument("--image", default="codemonkeys-sandbox:latest")
    args = ap.parse_args()
    run_id = f"bench-{os.getpid()}"
    with tempfile.TemporaryDirectory() as tmp:
        repo = make_repo(Path(tmp))
        spec = SandboxSpec(image=args.image, repo_path=repo, labels={"org.codemonkeys.run": run_id})
        patches = [patch_for(b) for b in BODIES]
        jobs = [(p, s) for p in patches for s in scripts()]
        n = len(jobs)

        # (b) the pool
        pool = SandboxPool(spec, size=WORKERS)

        def pooled(patch: str, script: Script) -> tuple[int | None, float]:
            with pool.lease() as sb:
                return one_run(sb, patch, script)

        try:
            pool_wall, pool_lat, pool_own, pool_codes = drive(jobs, pooled)
            stats = dict(pool.stats)
            with pool.lease() as sb:
                exec_s, agent_s = floors(sb, args.floor_reps)
        finally:
            pool.close()

        # (a) fresh container per run, on every run (or an evenly spread subset if asked)
        subset = (
            jobs
            if args.fresh_runs >= n
            else jobs[:: max(1, n // args.fresh_runs)][: args.fresh_runs]
        )

        def fresh(patch: str, script: Script) -> tuple[int | None, float]:
            sb = open_sandbox(spec)
            try:
                return one_run(sb, patch, script)
            finally:
                sb.close()

        fresh_wall, fresh_lat, fresh_own, fresh_codes = drive(subset, fresh)
        clean_containers(run_id=run_id, include_live=True)

    fixed = sum(1 for c in pool_codes if c == 0)
    assert fixed == sum(1 for c in fresh_codes if c == 0) or len(subset) < n
    pool_over = [lat - own for lat, own in zip(pool_lat, pool_own, strict=True)]
    fresh_over = [lat - own for lat, own in zip(fresh_lat, fresh_own, strict=True)]
    ms = lambda x: round(1000 * x, 1)  # noqa: E731
    fresh_per_run = fresh_wall / len(subset)
    pool_per_run = pool_wall / n
    figures = {
        "runs": n,
        "workers": WORKERS,
        "pool_size": WORKERS,
        "pool_wall_s": round(pool_wall, 2),
        "pool_containers_created": stats["created"],
        "pool_mean_reset_ms": ms(stats["reset_seconds_total"] / max(1, stats["resets"])),
        "script_own_ms_p50": ms(pct(pool_own, 0.5)),
        "pool_overhead_ms_p50": ms(pct(pool_over, 0.5)),
        "pool_overhead_ms_p95": ms(pct(pool_over, 0.95)),
        "pool_overhead_ms_mean": ms(statistics.mean(pool_over)),
        "floor_exec_ms": ms(pct(exec_s, 0.5)),
        "floor_agent_ms": ms(pct(agent_s, 0.5)),
        "fresh_runs_timed": len(subset),
        "fresh_wall_s": round(fresh_wall, 2),
        "fresh_overhead_ms_p50": ms(pct(fresh_over, 0.5)),
        "fresh_overhead_ms_p95": ms(pct(fresh_over, 0.95)),
        "speedup_vs_fresh_container": round(fresh_per_run / pool_per_run, 2),
        "overhead_ratio_fresh_over_pool_p50": round(pct(fresh_over, 0.5) / pct(pool_over, 0.5), 2),
        "fixed_runs": fixed,
    }
    print(
        f"pool: {n} runs in {pool_wall:.2f}s with {stats['created']} containers; "
        f"fresh: {len(subset)} runs in {fresh_wall:.2f}s"
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
