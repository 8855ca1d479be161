"""`swebench run --ray` on a real local 3-node Ray cluster (tests/ray_scenario.py) in a
network namespace with only loopback, real containers, the scripted end-to-end policy.

One cluster serves both jobs, run at the same time (start-up is much of the time): a
1-node run (the head's ``solo_slots``) and a 3-node run during which a worker node is killed as soon as one of
its problems has paid a model call. Both must give the same predictions; the killed
problem is retried on another node without paying a recorded call twice, and no
container of the run is left behind."""

from __future__ import annotations

import gzip
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from codemonkeys.prompts import prompts_dir
from tests.conftest import CLI, FIXTURES, ROOT
from tests.integration.test_swebench_run import FAST, _write_rows
from tests.swebench_fixture import build_swebench_fixture

pytestmark = [pytest.mark.docker, pytest.mark.slow]

SCENARIO = ROOT / "tests" / "ray_scenario.py"
PROBLEMS = 3
POLICY = FIXTURES / "policies" / "keyed_solver.py"
"""The end-to-end policy, answering only where its API key is in the environment."""
KEY_ENV = "RAY_TEST_API_KEY"
SECRET = "sk-ray-test-5f3c9a1e7d"
SHIPPED_LINE = "Keep the edit as small as the issue allows."


def _unavailable() -> str | None:
    if importlib.util.find_spec("ray") is None:
        return "ray is not installed (the codemonkeys[ray] extra)"
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return "unshare/ip (util-linux, iproute2) are not installed"
    if os.geteuid() != 0:
        return "a network namespace for the test cluster needs root (unshare --net)"
    return None


@pytest.fixture(scope="module")
def cluster_runs(tmp_path_factory, docker_client, sandbox_image):
    why = _unavailable()
    if why:
        if os.environ.get("CI") == "true":
            pytest.fail(f"distributed tests cannot run under CI: {why}")
        pytest.skip(why)
    row, _image = build_swebench_fixture(docker_client, sandbox_image)
    work = tmp_path_factory.mktemp("ray")
    names = {run: f"ray-{run}-{os.getpid()}" for run in ("one", "three", "ensemble")}
    rows = [dict(row, instance_id=f"{row['instance_id']}-ray{i}") for i in range(PROBLEMS)]
    dataset = _write_rows(work / "data.jsonl", rows)
    base = ["swebench", "run", "--dataset", str(dataset), "--model", f"scripted:{POLICY}", "-q"]
    # the runs render their own edit prompt, shipped to the nodes with each problem
    own = work / "my-prompts" / "generation"
    own.mkdir(parents=True)
    packaged = (prompts_dir() / "generation" / "edit_system.j2").read_text()
    (own / "edit_system.j2").write_text(packaged + f"\n{SHIPPED_LINE}\n")
    base += ["--set", f"prompts.dir={work / 'my-prompts'}"]
    for s in [*FAST, f"models.primary.api_key_env={KEY_ENV}"]:
        base += ["--set", s]
    jobs = [
        {
            "name": "one",
            "run_dir": str(work / names["one"]),
            "args": [*base, "--run-dir", str(work / names["one"])]
            + ["--set", "run.ray_resource=solo_slots"],
            # Ctrl-C once calls were paid, then the same command finishes the run
            "interrupt_after_calls": 6,
            "then": [
                [*base, "--run-dir", str(work / names["one"])]
                + ["--set", "run.ray_resource=solo_slots"],
                # its predictions through `ensemble --ray` (over the three nodes)
                ["ensemble", str(work / names["one"] / "predictions.jsonl")]
                + ["--dataset", str(dataset), "--run-dir", str(work / names["ensemble"]), "-q"]
                + ["--model", f"scripted:{POLICY}", "--set", "sandbox.pool_size=2"]
                + ["--set", "selection.attempts=3"]
                + ["--set", f"models.primary.api_key_env={KEY_ENV}"],
            ],
        },
        {
            "name": "three",
            "run_dir": str(work / names["three"]),
            "args": [*base, "--run-dir", str(work / names["three"])],
            "kill_worker": True,
            # the same command again resumes: nothing to do, nothing paid; then the
            # official harness grades the run, each problem on a node
            "then": [
                [*base, "--run-dir", str(work / names["three"])],
                ["swebench", "evaluate", str(work / names["three"]), "--chosen-only"],
            ],
        },
    ]
    spec = {"cli": CLI, "cwd": str(ROOT), "slots": 4, "solo": 6, "jobs": jobs}
    spec["driver_only_env"] = [KEY_ENV]
    (work / "spec.json").write_text(json.dumps(spec))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RAY_ENABLE_UV_RUN_RUNTIME_ENV": "0"}
    env[KEY_ENV] = SECRET
    inner = f"ip link set lo up; exec {sys.executable} {SCENARIO} {work / 'spec.json'}"
    proc = subprocess.run(
        ["unshare", "--net", "sh", "-c", inner],
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
        cwd=ROOT,
    )
    lines = [x for x in proc.stdout.splitlines() if x.startswith("{")]
    assert lines, proc.stdout[-5000:] + proc.stderr[-5000:]
    report = json.loads(lines[-1])
    (work / "report.json").write_text(json.dumps(report, indent=1))  # kept for a failure
    return {k: work / v for k, v in names.items()}, rows, report


def _predictions(run_dir: Path) -> dict[str, str]:
    lines = (run_dir / "predictions.jsonl").read_text().splitlines()
    return {p["instance_id"]: p["model_patch"] for p in map(json.loads, lines)}


def _paid_calls(run_dir: Path) -> Counter[tuple[str, str]]:
    """Calls paid per (problem, request). Copies of one row send identical requests, and
    a worker answers from the calls of its own problem, so the count is per problem."""
    lines = (run_dir / "calls.jsonl").read_text().splitlines()
    return Counter((c["problem"], c["request_hash"]) for c in map(json.loads, lines))


def test_ctrl_c_stops_the_cluster_run_and_the_same_command_resumes(cluster_runs):
    dirs, rows, report = cluster_runs
    stopped, resumed = report["jobs"]["one"], report["jobs"]["one"]["then0"]
    assert stopped["interrupted"], stopped["output"]
    assert stopped["rc"] == 130, stopped["output"]
    assert "interrupted:" in stopped["output"]
    assert resumed["rc"] == 0, resumed["output"]
    assert f"{PROBLEMS} of {PROBLEMS} problem(s) done" in resumed["output"]


def test_three_nodes_give_the_predictions_of_one(cluster_runs):
    dirs, rows, report = cluster_runs
    one, three = report["jobs"]["one"]["then0"], report["jobs"]["three"]
    assert one["rc"] == 0, one["output"]
    assert three["rc"] == 0, three["output"]
    # the 1-node run used only the head; the 3-node run spread over several nodes
    stopped = report["jobs"]["one"]
    assert len({*stopped["placed"].values(), *one["placed"].values()}) == 1, one["placed"]
    assert len(set(three["placed"].values())) >= 2, three["placed"]
    preds_one, preds_three = _predictions(dirs["one"]), _predictions(dirs["three"])
    assert set(preds_one) == {r["instance_id"] for r in rows}
    assert preds_three == preds_one
    assert all("(ordered[middle - 1] + ordered[middle]) / 2" in p for p in preds_one.values())
    # the run directory has the local layout: records of every stage per problem
    for r in rows:
        d = dirs["three"] / "problems" / r["instance_id"]
        for name in ("problem", "context", "generation", "selection", "result", "timing"):
            assert (d / f"{name}.json").is_file(), (d, name)
        with gzip.open(d / "prompts.jsonl.gz", "rt") as f:
            assert SHIPPED_LINE in f.read()  # prompts.dir rendered on the nodes


def test_a_killed_node_loses_no_problem_and_repeats_no_call(cluster_runs, docker_client):
    dirs, rows, report = cluster_runs
    three = report["jobs"]["three"]
    killed = three["killed"]
    assert killed, f"no worker node was killed mid-run: {three['placed']}\n{three['output']}"
    assert "retrying it on another node" in three["output"]
    status = json.loads((dirs["three"] / "status.json").read_text())
    assert status["status"] == "finished" and status["by_status"] == {"done": PROBLEMS}
    repeated = {h: n for h, n in _paid_calls(dirs["three"]).items() if n > 1}
    assert repeated == {}
    # the killed problem made every call the 1-node run made, once
    victim = killed["problem"]
    calls_three = [
        json.loads(x)
        for x in (dirs["three"] / "calls.jsonl").read_text().splitlines()
        if f'"{victim}"' in x
    ]
    calls_one = [
        json.loads(x)
        for x in (dirs["one"] / "calls.jsonl").read_text().splitlines()
        if f'"{victim}"' in x
    ]
    assert sorted(c["request_hash"] for c in calls_three) == sorted(
        c["request_hash"] for c in calls_one
    )
    for run_dir in dirs.values():
        left = docker_client.containers.list(
            all=True, filters={"label": f"org.codemonkeys.run={run_dir.name}"}
        )
        assert left == [], [c.name for c in left]


def test_ensemble_on_the_cluster(cluster_runs):
    dirs, rows, report = cluster_runs
    ens = report["jobs"]["one"]["then1"]
    assert ens["rc"] == 0, ens["output"]
    assert len(ens["placed"]) == PROBLEMS, ens["placed"]  # every problem ran as a task
    assert _predictions(dirs["ensemble"]) == _predictions(dirs["one"])


def test_rerun_resumes_and_evaluate_grades_on_the_nodes(cluster_runs):
    dirs, rows, report = cluster_runs
    three = report["jobs"]["three"]
    rerun, evaluate = three["then0"], three["then1"]
    assert rerun["rc"] == 0, rerun["output"]
    assert rerun["placed"] == {}  # finished problems are not shipped again
    assert f"{PROBLEMS} of {PROBLEMS} problem(s) done" in rerun["output"]
    # every call of the 3-node run, its killed attempt, its retry and the rerun was paid
    # once: as many as the 1-node run paid
    assert sum(_paid_calls(dirs["three"]).values()) == sum(_paid_calls(dirs["one"]).values())
    assert evaluate["rc"] == 0, evaluate["output"]
    summary = json.loads([x for x in evaluate["output"].splitlines() if x.startswith("{")][-1])
    assert summary["resolved"] == summary["graded"] == PROBLEMS, summary
    for r in rows:
        record = json.loads(
            (dirs["three"] / "problems" / r["instance_id"] / "evaluation.json").read_text()
        )
        assert record["verdict"] == "resolved"


def test_the_api_key_reaches_the_workers_and_no_record_or_log(cluster_runs):
    """The cluster's processes were started without the key; the workers answered, so it
    came through the job's runtime environment; nothing written or printed shows it."""
    dirs, rows, report = cluster_runs
    assert report["jobs"]["three"]["rc"] == 0
    for run_dir in dirs.values():
        for path in run_dir.rglob("*"):
            if path.is_file():
                data = path.read_bytes()
                if path.suffix == ".gz":
                    data = gzip.decompress(data)
                assert SECRET.encode() not in data, path
    assert SECRET not in json.dumps(report)
