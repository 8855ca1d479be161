"""A real local Ray cluster and `codemonkeys swebench run --ray` against it.

Run INSIDE a network namespace that has only loopback (Ray binds its nodes to the host's
interface address otherwise), as root:

    unshare --net sh -c 'ip link set lo up; exec python tests/ray_scenario.py SPEC.json'

SPEC: {"cli": path, "cwd": dir, "slots": n, "solo": n, "jobs": [{"name",
"run_dir", "args": [...], "kill_worker": bool, "interrupt_after_calls": n, "then": [[args], ...]}], "driver_only_env": [names]}
(``--ray ADDRESS`` is added to each command; "then": commands run after the job, in
order; "driver_only_env": variables the commands get and the cluster's processes do not). The cluster has three nodes with
``slots`` of ``docker_slots`` each; only the head also has ``solo`` of ``solo_slots`` (for
a 1-node run). The jobs run at the same time, or one after the other with
"sequential": true. A job with ``kill_worker`` has a worker node removed (raylet and workers killed)
as soon as one of its problems runs there and has paid a model call. The last output line
is one JSON object: per job its exit code, output, seconds and the killed node.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any


def start_cluster(slots: int, solo: int, nodes: int = 3) -> Any:
    from ray.cluster_utils import Cluster

    cluster = Cluster(
        initialize_head=True,
        head_node_args={
            "num_cpus": 1,
            "resources": {"docker_slots": slots, "solo_slots": solo},
            # a killed node is declared dead after a few seconds instead of ~15 s
            "_system_config": {
                "health_check_period_ms": 1000,
                "health_check_failure_threshold": 3,
            },
        },
    )
    for _ in range(nodes - 1):
        cluster.add_node(num_cpus=1, resources={"docker_slots": slots})
    cluster.wait_for_nodes()
    return cluster


def _calls_of(run_dir: Path, problem: str) -> int:
    path = run_dir / "calls.jsonl"
    if not path.is_file():
        return 0
    return sum(1 for line in path.read_text().splitlines() if f'"problem": "{problem}"' in line)


def _kill_when_busy(cluster: Any, run_dir: Path, placed: dict[str, str], done: threading.Event):
    """Remove the first worker (non-head) node that runs a problem which paid a call."""
    head = cluster.head_node.node_id
    workers = {n.node_id[:6]: n for n in cluster.worker_nodes if n.node_id != head}
    while not done.is_set():
        for problem, node in list(placed.items()):
            short = node.rsplit("/", 1)[-1]
            if short in workers and _calls_of(run_dir, problem) >= 1:
                cluster.remove_node(workers[short], allow_graceful=False)
                return {"node": short, "problem": problem}
        done.wait(0.05)  # polls the run's files; ends at once when the job ends
    return None


def _interrupt_after(proc: Any, run_dir: Path, calls: int, done: threading.Event) -> bool:
    """Ctrl-C (SIGINT) to the command once the run has paid ``calls`` model calls."""
    path = run_dir / "calls.jsonl"
    while not done.is_set():
        if path.is_file() and len(path.read_text().splitlines()) >= calls:
            proc.send_signal(signal.SIGINT)
            return True
        done.wait(0.05)  # polls the run's files; ends at once when the job ends
    return False


def run_job(cluster: Any, spec: dict[str, Any], job: dict[str, Any]) -> dict[str, Any]:
    env = {**os.environ, "COLUMNS": "200", "RAY_ENABLE_UV_RUN_RUNTIME_ENV": "0"}
    env.update(spec.get("driver_env", {}))
    run_dir = Path(job["run_dir"])
    args = [spec["cli"], *job["args"], "--ray", cluster.address]
    t0 = time.monotonic()
    proc = subprocess.Popen(
        args, env=env, cwd=spec["cwd"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    placed: dict[str, str] = {}
    done = threading.Event()
    killed: dict[str, Any] = {}
    killer = None
    if job.get("kill_worker"):
        killer = threading.Thread(
            target=lambda: killed.update(_kill_when_busy(cluster, run_dir, placed, done) or {})
        )
        killer.start()
    interrupted: list[bool] = []
    if job.get("interrupt_after_calls"):
        n = job["interrupt_after_calls"]
        threading.Thread(
            target=lambda: interrupted.append(_interrupt_after(proc, run_dir, n, done))
        ).start()
    out = []
    assert proc.stdout is not None
    for line in proc.stdout:
        out.append(line)
        if " on node " in line:
            problem, _, node = line.strip().partition(" on node ")
            placed[problem.split()[-1]] = node
    rc = proc.wait()
    done.set()
    if killer is not None:
        killer.join()
    report = {
        "rc": rc,
        "output": "".join(out)[-20000:],
        "seconds": time.monotonic() - t0,
        "killed": killed or None,
        "placed": placed,
        "interrupted": any(interrupted),
    }
    for i, args in enumerate(job.get("then", [])):  # follow-up commands, in order
        report[f"then{i}"] = run_job(cluster, spec, {"run_dir": job["run_dir"], "args": args})
    return report


def main() -> None:
    spec = json.loads(Path(sys.argv[1]).read_text())
    # variables only the commands (the Ray drivers) get, never the cluster's processes
    spec["driver_env"] = {k: os.environ.pop(k) for k in spec.get("driver_only_env", [])}
    t0 = time.monotonic()
    cluster = start_cluster(spec["slots"], spec["solo"])
    report: dict[str, Any] = {"startup_s": time.monotonic() - t0, "jobs": {}}
    try:
        if spec.get("sequential"):  # one after the other (timings)
            for job in spec["jobs"]:
                report["jobs"][job["name"]] = run_job(cluster, spec, job)
            return
        # the jobs run at the same time, as separate Ray jobs on the one cluster
        threads = [
            threading.Thread(
                target=lambda job=job: report["jobs"].__setitem__(
                    job["name"], run_job(cluster, spec, job)
                )
            )
            for job in spec["jobs"]
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        print(json.dumps(report), flush=True)
        cluster.shutdown()


if __name__ == "__main__":
    main()
