"""Streaming scheduler vs a stage barrier, on problems that differ in stage durations.

20 problems x 10 trajectories. A scripted model sleeps like a real API (2-8 s per call,
scaled by --scale so the bench takes about a minute). Each simulated problem makes the
pipeline's call pattern through the real ModelHub / RecordingModel / EndpointLimit / call
log: its relevance calls in parallel on the cheap model's endpoint (its own concurrency
limit), 3 rankings, 10 trajectories of sequential test+edit calls, selection calls, on the
primary endpoint. No containers: this measures the scheduler and the call limiters.

Problems differ as real ones do: repository size (one relevance call per file, 30 to 2000
files, median about 300: Sphinx at its SWE-bench commits has about 480), difficulty (trajectories of 1-3 calls for easy problems,
up to 12 for hard ones) and selection length (1-4 calls). So with a barrier between stages
(how the original ran: every problem's context, then every problem's generation, ...), each
stage waits for its slowest problem while the other endpoint sits idle; the streaming
scheduler runs problems through their stages as they come.

Both schedules run for real, in the same process, on the same plan. Figures (last line,
JSON):
- wall_s, barrier_wall_s, speedup_vs_barrier
- primary_slot_utilisation (busy primary call-slot seconds / (limit x wall)), the same for
  the barrier, and for the relevance endpoint
- wall_over_ideal: wall / lower bound (the larger of each endpoint's total call seconds /
  its limit and the longest problem's critical path)
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from codemonkeys.config import Config, EndpointConfig  # noqa: E402
from codemonkeys.llm.base import Message  # noqa: E402
from codemonkeys.pipeline import open_run, run_problems  # noqa: E402
from codemonkeys.problem import Problem  # noqa: E402
from codemonkeys.run_records import ProblemResult  # noqa: E402

POLICY = """
import time
def respond(request):
    # the sleep is encoded in the prompt so every request is self-describing
    seconds = float(request.last.split("sleep=")[1].split()[0])
    time.sleep(seconds)
    return "ok"
"""


def plan(seed: int, problems: int, trajectories: int, scale: float) -> dict[str, dict]:
    """Deterministic, heterogeneous work: per problem, the sleep of every call of every
    stage."""
    rng = random.Random(seed)

    def call() -> float:
        return rng.uniform(2.0, 8.0) * scale

    work = {}
    for p in range(problems):
        files = min(2000, max(30, int(rng.lognormvariate(5.7, 0.8))))  # median ~300 files
        hard = rng.random() < 0.3
        work[f"p{p:02d}"] = {
            "relevance": [call() / 4 for _ in range(files)],  # a cheap model answers faster
            "ranking": [call() for _ in range(3)],
            "trajectories": [
                [call() for _ in range(rng.randint(4, 12) if hard else rng.randint(1, 3))]
                for _ in range(trajectories)
            ],
            "selection": [call() for _ in range(rng.randint(1, 4))],
        }
    return work


def _calls(model, stage_key: str, sleeps: list[float], parallel: bool) -> None:
    def one(i_s):
        i, s = i_s
        model.complete(
            [Message(role="user", content=f"{stage_key}-{i} sleep={s:.4f}")],
            temperature=0.0,
            max_tokens=10,
            key=f"{stage_key}-{i}",
        )

    if parallel:
        # as the context stage does: as many workers as the endpoint's concurrency limit
        with ThreadPoolExecutor(min(len(sleeps), model.limit.max_concurrency)) as ex:
            list(ex.map(one, enumerate(sleeps)))
    else:
        for item in enumerate(sleeps):
            one(item)


def simulate(work: dict[str, dict], stages: tuple[str, ...]):
    def solve(rt, problem: Problem, gold) -> ProblemResult:
        w = work[problem.id]
        hub = rt.hub
        if "context" in stages:
            _calls(
                hub.model("relevance", problem_id=problem.id, stage="relevance"),
                f"{problem.id}-rel",
                w["relevance"],
                True,
            )
            _calls(
                hub.model("primary", problem_id=problem.id, stage="ranking"),
                f"{problem.id}-rank",
                w["ranking"],
                True,
            )
        if "generation" in stages:
            model = hub.model("primary", problem_id=problem.id, stage="edits")

            def traj(i_t):
                i, sleeps = i_t
                _calls(model, f"{problem.id}-t{i}", sleeps, False)

            with ThreadPoolExecutor(len(w["trajectories"])) as ex:
                list(ex.map(traj, enumerate(w["trajectories"])))
        if "selection" in stages:
            _calls(
                hub.model("primary", problem_id=problem.id, stage="selection"),
                f"{problem.id}-sel",
                w["selection"],
                False,
            )
        return ProblemResult(id=problem.id, status="done")

    return solve


def run(
    work: dict[str, dict], limits: dict[str, int], in_flight: int, policy: Path, barrier: bool
) -> dict:
    cfg = Config()
    cfg.models.primary = EndpointConfig(
        model=f"scripted:{policy}", max_concurrency=limits["primary"]
    )
    # the cheap relevance model is another endpoint, with its own concurrency limit
    cfg.models.relevance = EndpointConfig(
        model=f"scripted:{policy}",
        base_url="http://relevance.invalid",
        max_concurrency=limits["relevance"],
    )
    cfg.run.max_problems_in_flight = in_flight  # the same cap for both schedules
    problems = [(Problem(id=pid, repo="bench", issue="x"), None) for pid in work]
    with tempfile.TemporaryDirectory() as tmp:
        rt = open_run(Path(tmp) / "run", cfg)
        start = time.monotonic()
        if barrier:
            for stage in ("context", "generation", "selection"):
                run_problems(rt, problems, solve=simulate(work, (stage,)))
        else:
            run_problems(rt, problems, solve=simulate(work, ("context", "generation", "selection")))
        wall = time.monotonic() - start
        by_role = {
            "relevance" if "relevance.invalid" in key else "primary": lim
            for key, lim in rt.hub.limits.items()
        }
        return {
            "wall": wall,
            **{f"{role}_busy": lim.busy_slot_seconds for role, lim in by_role.items()},
            **{f"{role}_peak": lim.peak for role, lim in by_role.items()},
        }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--problems", type=int, default=20)
    ap.add_argument("--trajectories", type=int, default=10)
    ap.add_argument("--limit", type=int, default=8, help="primary endpoint concurrency")
    ap.add_argument("--relevance-limit", type=int, default=32)
    ap.add_argument("--in-flight", type=int, default=4)
    ap.add_argument("--scale", type=float, default=0.02, help="sleep scale (1.0 = 2-8 s per call)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    work = plan(args.seed, args.problems, args.trajectories, args.scale)
    limits = {"primary": args.limit, "relevance": args.relevance_limit}
    relevance_s = sum(sum(w["relevance"]) for w in work.values())
    primary_s = sum(
        sum(w["ranking"]) + sum(map(sum, w["trajectories"])) + sum(w["selection"])
        for w in work.values()
    )
    critical = max(
        max(w["relevance"])
        + max(w["ranking"])
        + max(map(sum, w["trajectories"]))
        + sum(w["selection"])
        for w in work.values()
    )
    ideal = max(relevance_s / args.relevance_limit, primary_s / args.limit, critical)
    with tempfile.TemporaryDirectory() as tmp:
        policy = Path(tmp) / "policy.py"
        policy.write_text(POLICY)
        streaming = run(work, limits, args.in_flight, policy, barrier=False)
        barrier = run(work, limits, args.in_flight, policy, barrier=True)

    def util(r: dict, role: str) -> float:
        return round(r[f"{role}_busy"] / (limits[role] * r["wall"]), 3)

    files = [len(w["relevance"]) for w in work.values()]
    traj_calls = [max(map(len, w["trajectories"])) for w in work.values()]
    figures = {
        "problems": args.problems,
        "trajectories": args.trajectories,
        "primary_limit": args.limit,
        "relevance_limit": args.relevance_limit,
        "in_flight": args.in_flight,
        "sleep_scale": args.scale,
        "files_per_problem_min_max": [min(files), max(files)],
        "longest_trajectory_calls_min_max": [min(traj_calls), max(traj_calls)],
        "primary_call_seconds": round(primary_s, 2),
        "relevance_call_seconds": round(relevance_s, 2),
        "ideal_wall_s": round(ideal, 2),
        "wall_s": round(streaming["wall"], 2),
        "wall_over_ideal": round(streaming["wall"] / ideal, 3),
        "primary_slot_utilisation": util(streaming, "primary"),
        "relevance_slot_utilisation": util(streaming, "relevance"),
        "peak_concurrent_primary_calls": streaming["primary_peak"],
        "barrier_wall_s": round(barrier["wall"], 2),
        "barrier_wall_over_ideal": round(barrier["wall"] / ideal, 3),
        "barrier_primary_slot_utilisation": util(barrier, "primary"),
        "speedup_vs_barrier": round(barrier["wall"] / streaming["wall"], 3),
    }
    for k, v in figures.items():
        print(f"{k:>34}: {v}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
