"""Problems over a Ray cluster: the same workload on 1 node and on 3 nodes.

The workload: PROBLEMS copies of the SWE-bench-shaped fixture (real containers, the
official image layout), the end-to-end scripted policy behind a simulated API latency
(``slow_solver.py``, SLOW_SOLVER_LATENCY s per call). The cluster (tests/ray_scenario.py,
in a network namespace with only loopback: needs root) has three nodes of equal
resources: ``docker_slots`` for one problem at a time each; the head alone also has as
many ``solo_slots``. In one run, one after the other:

1. ``one``: ``swebench run --ray`` on ``solo_slots`` (the baseline: one node);
2. ``three``: the same on ``docker_slots`` (three nodes);
3. ``killed``: three nodes again, a worker node killed once one of its problems paid a call.

Figures: ``scaling_efficiency`` = (one / three) / 3 (target >= 0.8); ``lost_problems``:
problems of any run not ``done``; ``repeated_calls``: calls paid twice for the same
(problem, request) in any run; predictions equal across runs. Every node shares this
machine's cores and Docker engine, so the figure only shows scaling where the API wait,
not the CPU, is what a problem spends its time on.

    uv run python tests/benchmarks/bench_distributed.py   (as root; last line: JSON)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.swebench_fixture import build_swebench_fixture  # noqa: E402

PROBLEMS = int(os.environ.get("BENCH_PROBLEMS", "6"))
LATENCY = os.environ.get("SLOW_SOLVER_LATENCY", "2.0")
POLICY = ROOT / "tests" / "fixtures" / "policies" / "slow_solver.py"
SETTINGS = [
    "generation.samples=2",
    "generation.test_attempts=3",
    "generation.edit_attempts=3",
    "sandbox.pool_size=2",
    "sandbox.script_timeout_s=60",
    "selection.attempts=3",
    "context.rankings=1",
]
CLI = str(Path(sys.executable).parent / "codemonkeys")


def jobs(work: Path, dataset: Path) -> list[dict]:
    base = ["swebench", "run", "--dataset", str(dataset), "--model", f"scripted:{POLICY}"]
    for s in SETTINGS:
        base += ["--set", s]
    out = []
    for name, resource, kill in (
        ("one", "solo_slots", False),
        ("three", "docker_slots", False),
        ("killed", "docker_slots", True),
    ):
        run_dir = work / f"bench-{name}-{os.getpid()}"
        args = [*base, "--run-dir", str(run_dir), "--set", f"run.ray_resource={resource}"]
        out.append({"name": name, "run_dir": str(run_dir), "args": args, "kill_worker": kill})
    return out


def run_figures(run_dir: Path) -> dict:
    status = json.loads((run_dir / "status.json").read_text())
    calls = [json.loads(x) for x in (run_dir / "calls.jsonl").read_text().splitlines()]
    paid = Counter((c["problem"], c["request_hash"]) for c in calls)
    preds = [json.loads(x) for x in (run_dir / "predictions.jsonl").read_text().splitlines()]
    return {
        "lost": PROBLEMS - status["by_status"].get("done", 0),
        "repeated": sum(n - 1 for n in paid.values()),
        "calls": len(calls),
        "predictions": {p["instance_id"]: p["model_patch"] for p in preds},
    }


def main() -> None:
    import docker

    client = docker.from_env()
    row, _ = build_swebench_fixture(client, "codemonkeys-sandbox:latest")
    work = Path(tempfile.mkdtemp(prefix="bench-distributed-"))
    rows = [dict(row, instance_id=f"{row['instance_id']}-bench{i}") for i in range(PROBLEMS)]
    dataset = work / "data.jsonl"
    dataset.write_text("".join(json.dumps(r) + "\n" for r in rows))
    spec = {"cli": CLI, "cwd": str(ROOT), "slots": 2, "solo": 2, "sequential": True}
    spec["jobs"] = jobs(work, dataset)
    (work / "spec.json").write_text(json.dumps(spec))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SLOW_SOLVER_LATENCY": LATENCY}
    inner = (
        f"ip link set lo up; exec {sys.executable} {ROOT}/tests/ray_scenario.py {work}/spec.json"
    )
    proc = subprocess.run(
        ["unshare", "--net", "sh", "-c", inner], capture_output=True, text=True, env=env
    )
    report = json.loads([x for x in proc.stdout.splitlines() if x.startswith("{")][-1])
    figures = {
        name: run_figures(Path(j["run_dir"]))
        for name, j in zip(("one", "three", "killed"), spec["jobs"], strict=True)
    }
    secs = {name: round(report["jobs"][name]["seconds"], 1) for name in figures}
    for name in figures:
        print(
            f"{name}: {secs[name]} s, rc {report['jobs'][name]['rc']}, "
            f"{figures[name]['calls']} calls, nodes {sorted(set(report['jobs'][name]['placed'].values()))}"
        )
    print(
        json.dumps(
            {
                "problems": PROBLEMS,
                "latency_s": float(LATENCY),
                "cluster_startup_s": round(report["startup_s"], 1),
                "one_node_s": secs["one"],
                "three_nodes_s": secs["three"],
                "killed_run_s": secs["killed"],
                "speedup": round(secs["one"] / secs["three"], 2),
                "scaling_efficiency": round(secs["one"] / secs["three"] / 3, 2),
                "lost_problems": sum(f["lost"] for f in figures.values()),
                "repeated_calls": sum(f["repeated"] for f in figures.values()),
                "same_predictions": all(
                    f["predictions"] == figures["one"]["predictions"] for f in figures.values()
                ),
                "killed": report["jobs"]["killed"]["killed"],
                "cpus": os.cpu_count(),
                "load_avg_1m": round(os.getloadavg()[0], 1),
            }
        )
    )


if __name__ == "__main__":
    main()
