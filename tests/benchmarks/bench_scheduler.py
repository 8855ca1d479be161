"""Scheduler overhead: 20 problems x 10 trajectories, 8 concurrent model calls.

A scripted model sleeps like a real API (2-8 s per call, scaled by --scale so the bench
takes about a minute). Each simulated problem makes the pipeline's call pattern through the
real ModelHub / RecordingModel / EndpointLimit / call log: relevance calls in parallel, 3
rankings, 10 trajectories of 2-8 sequential test+edit calls, 2 selection calls. No
containers: this measures the scheduler and the call limiter, not the sandbox.

Figures (last line, JSON):
- call_slot_utilisation: busy call-slot seconds / (limit x wall) while work remains
- wall_over_ideal: wall time / ideal (total call seconds / limit, or the longest problem's
  critical path if larger)
- barrier_wall_over_ideal and speedup_vs_barrier: the same work with a barrier between
  stages across all problems (how the original ran its stages)
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
from codemonkeys.pipeline import ProblemResult, open_run, run_problems  # noqa: E402
from codemonkeys.problem import Problem  # noqa: E402

POLICY = """
import time
def respond(request):
    # the sleep is encoded in the prompt so every request is self-describing
    seconds = float(request.last.split("sleep=")[1].split()[0])
    time.sleep(seconds)
    return "ok"
"""


def plan(seed: int, problems: int, trajectories: int, scale: float) -> dict[str, dict]:
    """Deterministic work: per problem, the sleep of every call of every stage."""
    rng = random.Random(seed)

    def call() -> float:
        return rng.uniform(2.0, 8.0) * scale

    work = {}
    for p in range(problems):
        work[f"p{p:02d}"] = {
            "relevance": [call() / 4 for _ in range(12)],  # a cheap model answers faster
            "ranking": [call() for _ in range(3)],
            "trajectories": [
                [call() for _ in range(rng.randint(2, 8))] for _ in range(trajectories)
            ],
            "selection": [call() for _ in range(2)],
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
        with ThreadPoolExecutor(len(sleeps)) as ex:
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


def run(work: dict[str, dict], limit: int, in_flight: int, policy: Path, barrier: bool) -> dict:
    cfg = Config()
    cfg.models.primary = EndpointConfig(model=f"scripted:{policy}", max_concurrency=limit)
    cfg.run.max_problems_in_flight = in_flight if not barrier else len(work)
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
        limit_obj = next(iter(rt.hub.limits.values()))
        return {"wall": wall, "busy": limit_obj.busy_slot_seconds, "peak": limit_obj.peak}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--problems", type=int, default=20)
    ap.add_argument("--trajectories", type=int, default=10)
    ap.add_argument("--limit", type=int, default=8)
    ap.add_argument("--in-flight", type=int, default=4)
    ap.add_argument("--scale", type=float, default=0.02, help="sleep scale (1.0 = 2-8 s per call)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    work = plan(args.seed, args.problems, args.trajectories, args.scale)
    total_call_s = sum(
        sum(w["relevance"])
        + sum(w["ranking"])
        + sum(map(sum, w["trajectories"]))
        + sum(w["selection"])
        for w in work.values()
    )
    critical = max(
        max(w["relevance"])
        + max(w["ranking"])
        + max(map(sum, w["trajectories"]))
        + sum(w["selection"])
        for w in work.values()
    )
    ideal = max(total_call_s / args.limit, critical)
    with tempfile.TemporaryDirectory() as tmp:
        policy = Path(tmp) / "policy.py"
        policy.write_text(POLICY)
        streaming = run(work, args.limit, args.in_flight, policy, barrier=False)
        barrier = run(work, args.limit, args.in_flight, policy, barrier=True)
    figures = {
        "problems": args.problems,
        "trajectories": args.trajectories,
        "call_limit": args.limit,
        "sleep_scale": args.scale,
        "total_call_seconds": round(total_call_s, 2),
        "ideal_wall_s": round(ideal, 2),
        "wall_s": round(streaming["wall"], 2),
        "peak_concurrent_calls": streaming["peak"],
        "call_slot_utilisation": round(streaming["busy"] / (args.limit * streaming["wall"]), 3),
        "wall_over_ideal": round(streaming["wall"] / ideal, 3),
        "barrier_wall_s": round(barrier["wall"], 2),
        "barrier_wall_over_ideal": round(barrier["wall"] / ideal, 3),
        "speedup_vs_barrier": round(barrier["wall"] / streaming["wall"], 3),
    }
    for k, v in figures.items():
        print(f"{k:>26}: {v}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
