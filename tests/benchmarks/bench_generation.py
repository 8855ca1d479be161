"""Generation wall time vs the ideal critical path, and against real baselines.

10 trajectories x 8 test attempts + 8 edit attempts on one problem, real Docker sandboxes,
a scripted model that sleeps like a real API (2-8 s per call, scaled by --scale, default
0.1 => 0.2-0.8 s). The ideal critical path is the longest trajectory's own time: its model
calls (provider seconds from the call log) plus its executions (time holding a sandbox:
patch, run, reset; the original/edited pair counted once, as they run in parallel).
Waiting for an endpoint slot, a free sandbox or the prompt-cache warm-up is overhead.

Baselines, run for real in the same process on the same trajectories (the policy's answers
and sleeps depend only on the trajectory index), at a smaller size (--baseline-samples,
default 3):
- ours: the k trajectories in parallel on the warm pool (the product's way);
- sequential: the k trajectories one after another, each alone on the warm pool;
- original shape: the k trajectories in parallel, but every script run in a fresh container
  (created, repository copied, run, removed), as the original CodeMonkeys ran them.

    uv run python tests/benchmarks/bench_generation.py [--scale 0.1] [--samples 10]

Last line: a JSON object of named figures.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from codemonkeys.config import (  # noqa: E402
    Config,
    EndpointConfig,
    GenerationConfig,
    ModelsConfig,
    SandboxConfig,
)
from codemonkeys.execution import ExecutionCache, Script, patch_digest  # noqa: E402
from codemonkeys.generation.stage import run_generation  # noqa: E402
from codemonkeys.llm import ModelHub  # noqa: E402
from codemonkeys.llm.recording import CallLog, CostTracker  # noqa: E402
from codemonkeys.problem import Problem  # noqa: E402
from codemonkeys.sandbox import SandboxPool, SandboxSpec  # noqa: E402
from codemonkeys.sandbox.gittree import host_tree_tar  # noqa: E402
from codemonkeys.sandbox.images import docker_client  # noqa: E402
from codemonkeys.sandbox.pool import open_sandbox  # noqa: E402
from codemonkeys.store import RunStore  # noqa: E402
from tests.conftest import make_git_repo  # noqa: E402
from tests.integration.test_generation import ISSUE, REPO_FILES  # noqa: E402

POLICY = ROOT / "tests" / "fixtures" / "policies" / "gen_bench.py"


class TimedCache(ExecutionCache):
    """Records each run's own sandbox time (acquired -> reset done), by (patch, script)."""

    def __init__(self, pool: SandboxPool, timeout: float):
        self._local = threading.local()
        self.own: dict[tuple[str, str], float] = {}

        @contextmanager
        def lease():
            with pool.lease() as sb:
                t0 = time.monotonic()
                try:
                    yield sb
                finally:
                    self._local.t0 = t0
            self._local.own = time.monotonic() - self._local.t0

        super().__init__(lease, timeout)

    def run(self, patch, script: Script):
        self._local.own = 0.0
        result = super().run(patch, script)
        if self._local.own:
            self.own[(patch_digest(patch), script.digest)] = self._local.own
        return result


def own_exec_seconds(rec, cache: TimedCache) -> float:
    total = 0.0
    for t in rec.tests:
        total += cache.own.get((patch_digest(None), t.script.digest), 0.0)
    counted = {(patch_digest(None), t.script.digest) for t in rec.tests}
    for p in rec.pairs:
        s = rec.tests[p.test].script.digest
        orig_key = (patch_digest(None), s)
        orig = 0.0 if orig_key in counted else cache.own.get(orig_key, 0.0)
        counted.add(orig_key)
        total += max(orig, cache.own.get((patch_digest(rec.edits[p.edit].patch), s), 0.0))
    return total


def fresh_container_lease(spec: SandboxSpec, slots: threading.BoundedSemaphore):
    """The original's shape: a new container for every script run (at most ``slots`` at
    once), removed afterwards."""
    client = docker_client()
    repo_tar = host_tree_tar(spec.repo_path, spec.base_commit, spec.subdir)

    @contextmanager
    def lease():
        with slots:
            box = open_sandbox(spec, client=client, repo_tar=repo_tar)
            try:
                yield box
            finally:
                box.close()

    return lease


def one_run(problem, context, config, tmp: Path, name: str, samples: int, **kw) -> float:
    """run_generation for ``samples`` trajectories with its own store and call log;
    returns its wall seconds."""
    cfg = config.model_copy(deep=True)
    cfg.generation.samples = samples
    store = RunStore(tmp / name)
    hub = ModelHub(cfg.models, CallLog(store), CostTracker())
    t0 = time.monotonic()
    run_generation(
        problem.model_copy(update={"id": name}), context, hub, kw.pop("pool"), store, cfg, **kw
    )
    return time.monotonic() - t0


def baselines(problem, context, config, pool: SandboxPool, tmp: Path, k: int) -> dict:
    """The same k trajectories three ways (see the module docstring); wall seconds each."""
    ours = one_run(problem, context, config, tmp, "base-ours", k, pool=pool)
    sequential = 0.0
    for i in range(k):
        os.environ["GEN_BENCH_TRAJ_OFFSET"] = str(i)  # the one-sample run plays traj-i
        try:
            sequential += one_run(problem, context, config, tmp, f"base-seq-{i}", 1, pool=pool)
        finally:
            os.environ.pop("GEN_BENCH_TRAJ_OFFSET", None)
    fresh = ExecutionCache(
        fresh_container_lease(pool.spec, threading.BoundedSemaphore(pool.size)),
        timeout=config.sandbox.script_timeout_s,
    )
    original = one_run(problem, context, config, tmp, "base-fresh", k, pool=pool, cache=fresh)
    return {
        "baseline_samples": k,
        "baseline_ours_wall_s": round(ours, 2),
        "baseline_sequential_wall_s": round(sequential, 2),
        "baseline_fresh_container_wall_s": round(original, 2),
        "baseline_fresh_container_runs": fresh.runs,
        "sequential_over_ours": round(sequential / ours, 2),
        "fresh_container_over_ours": round(original / ours, 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=float, default=0.1, help="multiplies the 2-8 s call sleeps")
    ap.add_argument("--samples", type=int, default=10)
    ap.add_argument("--attempts", type=int, default=8)
    ap.add_argument("--pool", type=int, default=10)
    ap.add_argument("--context-chars", type=int, default=40_000)
    ap.add_argument("--baseline-samples", type=int, default=3)
    ap.add_argument(
        "--no-solo",
        dest="solo",
        action="store_false",
        help="skip the uncontended single-trajectory reference run",
    )
    args = ap.parse_args()
    os.environ["GEN_BENCH_SCALE"] = str(args.scale)

    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp) / "repo"
        sha = make_git_repo(repo, REPO_FILES)
        spec = SandboxSpec(
            kind="docker",
            image="codemonkeys-sandbox:latest",
            workdir="/repo",
            repo_path=repo,
            base_commit=sha,
            memory="512m",
            labels={"org.codemonkeys.bench": "generation"},
        )
        config = Config(
            models=ModelsConfig(
                primary=EndpointConfig(
                    model=f"scripted:{POLICY}", max_concurrency=max(10, args.samples)
                )
            ),
            generation=GenerationConfig(
                samples=args.samples, test_attempts=args.attempts, edit_attempts=args.attempts
            ),
            sandbox=SandboxConfig(script_timeout_s=30),
        )
        store = RunStore(Path(tmp) / "run")
        hub = ModelHub(config.models, CallLog(store), CostTracker())
        problem = Problem(id="bench", repo="local/stats", issue=ISSUE)
        context = ("# packed context\n" + "x = 1\n" * (args.context_chars // 6))[
            : args.context_chars
        ]

        with SandboxPool(spec, size=args.pool) as pool:
            # warm the pool: container creation is a one-off per problem, not per run
            t0 = time.monotonic()
            leases = [pool.lease() for _ in range(args.pool)]
            with ThreadPoolExecutor(args.pool) as ex:
                list(ex.map(lambda cm: cm.__enter__(), leases))
            for cm in leases:
                cm.__exit__(None, None, None)
            pool_warm_s = time.monotonic() - t0

            solo_s = None
            if args.solo:
                # one trajectory alone: its time without contention from the other nine
                solo_cfg = config.model_copy(deep=True)
                solo_cfg.generation.samples = 1
                solo_store = RunStore(Path(tmp) / "solo")
                solo_hub = ModelHub(solo_cfg.models, CallLog(solo_store), CostTracker())
                solo_problem = problem.model_copy(update={"id": "bench-solo"})
                t0 = time.monotonic()
                run_generation(solo_problem, context, solo_hub, pool, solo_store, solo_cfg)
                solo_s = time.monotonic() - t0

            cache = TimedCache(pool, config.sandbox.script_timeout_s)
            t0 = time.monotonic()
            result = run_generation(problem, context, hub, pool, store, config, cache=cache)
            wall = time.monotonic() - t0

            base = baselines(problem, context, config, pool, Path(tmp), args.baseline_samples)

        calls = store.read_jsonl(store.root / "calls.jsonl")
        model_by_key: dict[str, float] = defaultdict(float)
        for c in calls:
            model_by_key[c["key"]] += float(c["seconds"])
        own = {}
        for rec in result.trajectories:
            own[rec.index] = model_by_key[f"traj-{rec.index}"] + own_exec_seconds(rec, cache)
        critical = max(own.values())
        statuses = sorted({r.status for r in result.trajectories})
        figures = {
            "samples": args.samples,
            "attempts": args.attempts,
            "sleep_scale": args.scale,
            "calls": len(calls),
            "executions": cache.runs,
            "pool_size": args.pool,
            "pool_warmup_s": round(pool_warm_s, 2),
            "wall_s": round(wall, 2),
            "critical_path_s": round(critical, 2),
            "wall_over_critical_path": round(wall / critical, 3),
            "model_s_max_traj": round(max(model_by_key.values()), 2),
            "exec_s_max_traj": round(
                max(own_exec_seconds(r, cache) for r in result.trajectories), 2
            ),
            "solo_trajectory_s": round(solo_s, 2) if solo_s else None,
            "wall_over_solo_trajectory": round(wall / solo_s, 2) if solo_s else None,
            "warmup_wait_s_total": round(sum(r.timing.wait_s for r in result.trajectories), 2),
            "endpoint_peak_concurrency": max(lim.peak for lim in hub.limits.values()),
            "statuses": statuses,
            **base,
        }
        for k, v in figures.items():
            if k != "statuses":
                print(f"{k:28s} {v}")
        print(json.dumps(figures))


if __name__ == "__main__":
    main()
