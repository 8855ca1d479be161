"""`codemonkeys swebench run` end to end: a SWE-bench-shaped instance in a locally built
image (official layout and name), the real CLI in a subprocess, a scripted model, real
containers; then the official harness grades the result."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from codemonkeys.store import RunStore
from tests.conftest import CLI, FIXTURES, ROOT
from tests.selection_checks import assert_chosen_by_the_selector, candidate_of, load_selection
from tests.swebench_fixture import build_swebench_fixture

pytestmark = [pytest.mark.docker, pytest.mark.slow]

POLICY = FIXTURES / "policies" / "example_solver.py"
FAST = [
    "generation.samples=2",
    "generation.test_attempts=3",
    "generation.edit_attempts=3",
    "sandbox.pool_size=2",
    "sandbox.script_timeout_s=30",
    "selection.attempts=3",
    "context.rankings=1",
]


def _cli(
    *args: str, timeout: float = 600, cwd: Path = ROOT, **popen
) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    return subprocess.run(
        [CLI, *args], capture_output=True, text=True, timeout=timeout, env=env, cwd=cwd, **popen
    )


def _run_args(dataset: Path, run_dir: Path | None, *extra: str) -> list[str]:
    """``swebench run`` arguments; ``run_dir`` None: the default runs/swebench-<dataset>."""
    args = ["swebench", "run", "--dataset", str(dataset), "--quiet"]
    args += ["--run-dir", str(run_dir)] if run_dir is not None else []
    args += ["--model", f"scripted:{POLICY}"]
    for s in FAST:
        args += ["--set", s]
    return [*args, *extra]


def _result(run_dir: Path, pid: str) -> dict:
    return json.loads((run_dir / "problems" / pid / "result.json").read_text())["data"]


@pytest.fixture(scope="module")
def fixture_row(docker_client, sandbox_image):
    row, image = build_swebench_fixture(docker_client, sandbox_image)
    return row


def _write_rows(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_run_then_official_harness_grades_the_chosen_patch(tmp_path, fixture_row):
    """As a user runs it: from their directory, the default relative run directory."""
    _write_rows(tmp_path / "data.jsonl", [fixture_row])
    proc = _cli(*_run_args(Path("data.jsonl"), None, "--set", "generation.samples=3"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    run_dir = tmp_path / "runs" / "swebench-data"
    assert not (run_dir / "runs").exists()  # the documented layout, not runs/<run>/runs/...
    # quiet mode: one line per problem and the summaries, no multi-line log records
    assert "INFO" not in proc.stderr, proc.stderr
    assert "finished: 1 of 1 problem(s) done (done 1), errors 0" in proc.stderr
    pid = fixture_row["instance_id"]
    result = _result(run_dir, pid)
    assert result["status"] == "done", result
    # three trajectories, three distinct candidates: the right fix, one that handles only
    # two-item lists and one that breaks odd lengths; each passes its own reproduction
    selection = load_selection(run_dir, pid)
    right, two_items, breaks_odd = (
        candidate_of(selection, f"codemonkeys:traj-{i}") for i in range(3)
    )
    assert len({right, two_items, breaks_odd}) == len(result["candidates"]) == 3
    # the matrix ranks the right fix first (every generated test fails on the original)...
    assert selection["votes"] == {right: 3, breaks_odd: 2, two_items: 1}
    assert selection["top_k"][0] == right
    # the repository's own odd-length test breaks with one wrong fix: the fused rule drops it
    reg = selection["regression"]
    assert reg["test_files"] == ["tests/test_stats.py"]
    assert reg["candidates"][breaks_odd]["regressions"] == [
        "tests.test_stats.TestMedian.test_median_odd"
    ]
    assert (
        reg["candidates"][right]["regressions"] == reg["candidates"][two_items]["regressions"] == []
    )
    assert breaks_odd not in selection["top_k"]
    # ...and the selector confirms it with a test of its own
    assert_chosen_by_the_selector(selection, right, [two_items, breaks_odd])
    assert "(ordered[middle - 1] + ordered[middle]) / 2" in result["chosen_patch"]
    preds = [json.loads(x) for x in (run_dir / "predictions.jsonl").read_text().splitlines()]
    assert preds == [
        {
            "instance_id": pid,
            "model_name_or_path": "codemonkeys",
            "model_patch": result["chosen_patch"],
        }
    ]

    # gold fields never reached a model: scan every recorded prompt of the run
    recorded = RunStore(run_dir).read_prompts(pid)
    assert len(recorded) >= 5
    prompts = json.dumps(recorded)
    gold_bits = [fixture_row["patch"], fixture_row["test_patch"]]
    gold_bits += [
        line[1:].strip()
        for line in fixture_row["test_patch"].splitlines()
        if line.startswith("+") and len(line) > 25 and not line.startswith("+++")
    ]
    gold_bits += (
        json.loads(fixture_row["FAIL_TO_PASS"])
        if isinstance(fixture_row["FAIL_TO_PASS"], str)
        else fixture_row["FAIL_TO_PASS"]
    )
    for bit in gold_bits:
        assert bit and json.dumps(bit)[1:-1] not in prompts, (
            f"gold text reached a prompt: {bit[:80]!r}"
        )

    # the instance image is gone: nothing is graded, and nothing is called unresolved
    rows_file = run_dir / "dataset.jsonl"
    recorded = rows_file.read_text()
    gone = dict(json.loads(recorded), image="localhost:1/codemonkeys-absent:gone")
    rows_file.write_text(json.dumps(gone) + "\n")
    proc = _cli("swebench", "evaluate", str(run_dir), timeout=900)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "1 problem(s) ungraded" in proc.stderr
    evaluation = json.loads((run_dir / "problems" / pid / "evaluation.json").read_text())
    assert evaluation["verdict"] == "ungraded" and evaluation["chosen"] is None
    assert "localhost:1/codemonkeys-absent:gone" in evaluation["reason"]
    report = json.loads(_cli("report", str(run_dir), "--json").stdout)  # JSON alone
    assert report["problems"][0]["verdict"] == "ungraded"
    assert report["summary"]["resolve_rate"] is None and report["summary"]["ungraded"] == 1
    rows_file.write_text(recorded)  # the image is back: the next evaluate grades it

    # the official harness: the chosen patch resolves, the decoy candidate does not
    proc = _cli("swebench", "evaluate", "runs/swebench-data", timeout=900, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert json.loads(proc.stdout)["resolved"] == 1  # the summary alone on stdout
    evaluation = json.loads((run_dir / "problems" / pid / "evaluation.json").read_text())
    assert evaluation["chosen"] is True and evaluation["verdict"] == "resolved"
    assert evaluation["candidates"] == {right: True, two_items: False, breaks_odd: False}
    # three distinct patches, three gradings: the chosen one is not graded again as a candidate
    graded = sorted((run_dir / "evaluation" / "logs").rglob("report.json"))
    assert len(graded) == 3, graded

    # the report reads it all: resolved 1/1, coverage 1/1, and an HTML page
    proc = _cli("report", "runs/swebench-data", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["summary"]["resolve_rate"] == 1.0
    assert report["summary"]["coverage"] == 1.0
    assert (run_dir / "report.html").stat().st_size > 2000

    # one problem's trajectories, tests and votes as a page to read
    page = tmp_path / "show.html"
    proc = _cli("show", str(run_dir), pid, "--out", str(page))
    assert proc.returncode == 0, proc.stderr
    html = page.read_text()
    assert "stats.median" in html and "trajectory" in html.lower()


def test_killed_multi_problem_run_resumes_and_failures_stay_local(tmp_path, fixture_row):
    rows = []
    for i in range(3):
        r = dict(fixture_row)
        r["instance_id"] = f"{fixture_row['instance_id']}-copy{i}"
        rows.append(r)
    missing_image = dict(
        fixture_row,
        instance_id="codemonkeys__statkit-noimage",
        image="codemonkeys-absent/none:latest",
    )
    missing_field = {k: v for k, v in fixture_row.items() if k != "problem_statement"}
    missing_field["instance_id"] = "codemonkeys__statkit-nofield"
    dataset = _write_rows(
        tmp_path / "data.jsonl", [rows[0], missing_image, rows[1], missing_field, rows[2]]
    )
    run_dir = tmp_path / "run"
    args = _run_args(dataset, run_dir, "--set", "run.max_problems_in_flight=1")

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [CLI, *args], env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    first = run_dir / "problems" / rows[0]["instance_id"] / "result.json"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not first.exists():
        time.sleep(0.2)
    assert first.exists(), "the first problem never finished"
    time.sleep(1.0)  # let the run get into the next problems
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    calls_before = len((run_dir / "calls.jsonl").read_text().splitlines())

    # leftover containers of the killed process are found and removed
    assert _cli("clean").returncode == 0

    done = _cli(*args)
    # two problems failed (no image, a missing field): the exit status and summary say so
    assert done.returncode == 1, done.stdout + done.stderr
    assert "errors 2" in done.stderr and "failed 2" in done.stderr
    # the problem finished before the kill is listed too: [1/5] ... [5/5], no gaps
    numbers = [ln.split()[0] for ln in done.stderr.splitlines() if ln.startswith("[")]
    assert numbers == [f"[{i}/5]" for i in range(1, 6)], done.stderr
    for r in rows:
        assert _result(run_dir, r["instance_id"])["status"] == "done"
    assert "image" in _result(run_dir, "codemonkeys__statkit-noimage")["error"]
    nofield = _result(run_dir, "codemonkeys__statkit-nofield")
    assert nofield["status"] == "failed" and "problem_statement" in nofield["error"]
    calls = [json.loads(x) for x in (run_dir / "calls.jsonl").read_text().splitlines() if x.strip()]
    hashes = [c["request_hash"] for c in calls if "request_hash" in c]
    assert len(hashes) == len(set(hashes)), "a completed call was made again after the resume"
    assert len(calls) > calls_before
    status = json.loads((run_dir / "status.json").read_text())
    assert status["status"] == "finished"


def test_cost_cap_stops_new_work(tmp_path, fixture_row):
    rows = [dict(fixture_row, instance_id=f"{fixture_row['instance_id']}-cap{i}") for i in range(3)]
    dataset = _write_rows(tmp_path / "data.jsonl", rows)
    run_dir = tmp_path / "run"
    args = _run_args(
        dataset,
        run_dir,
        "--max-cost",
        "0.01",
        "--set",
        "models.prices.scripted={input=100.0, output=100.0}",
        "--set",
        "run.max_problems_in_flight=1",
    )
    proc = _cli(*args)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "cost cap reached" in proc.stderr + proc.stdout
    assert "stopped at the cost cap" in proc.stderr
    status = json.loads((run_dir / "status.json").read_text())
    assert status["status"] == "budget_exhausted"
    first = _result(run_dir, rows[0]["instance_id"])
    assert first["status"] == "budget_exhausted"
    # no problem started after the cap was reached
    assert not (run_dir / "problems" / rows[2]["instance_id"] / "result.json").exists()
    calls = (run_dir / "calls.jsonl").read_text().splitlines()
    # the call that crossed the cap and the ones already in flight beside it, nothing after
    assert len(calls) <= 8


STALE_PATCH = """diff --git a/stats.py b/stats.py
--- a/stats.py
+++ b/stats.py
@@ -12,5 +12,7 @@ def median(values):
     ordered = sorted(values)
     if not ordered:
         raise ValueError("median of empty data")
-    mid = len(ordered) // 2
-    return ordered[mid]
+    mid = len(ordered) // 2
+    if len(ordered) % 2:
+        return ordered[mid]
+    return (ordered[mid - 1] + ordered[mid]) / 2
"""
"""A fix written against another version of stats.py (``mid``, not ``middle``): it does
not apply to the base commit."""


def _patch_of(repo: Path, replacement: str) -> str:
    from tests.swebench_fixture import BUGGY_SNIPPET

    stats = repo / "stats.py"
    original = stats.read_text()
    stats.write_text(original.replace(BUGGY_SNIPPET, replacement))
    diff = subprocess.run(["git", "diff"], cwd=repo, capture_output=True, text=True).stdout
    stats.write_text(original)
    assert diff.strip()
    return diff


def test_ensemble_other_systems_predictions_without_labels(tmp_path, fixture_row):
    """Five systems' predictions (the fix, two wrong fixes, a patch that does not apply,
    an empty patch) go through test generation, the matrix, voting and the selector; the
    exported choice is the fix, and it won on its votes and the selector's test."""
    from tests.swebench_fixture import make_fixture_repo

    repo = make_fixture_repo(tmp_path / "statkit")
    two_items = _patch_of(
        repo.path,
        "    middle = len(ordered) // 2\n    if len(ordered) == 2:\n"
        "        return (ordered[0] + ordered[1]) / 2\n    return ordered[middle]\n",
    )
    breaks_odd = _patch_of(
        repo.path,
        "    middle = len(ordered) // 2\n    return (ordered[middle - 1] + ordered[middle]) / 2\n",
    )
    pid = fixture_row["instance_id"]
    dataset = _write_rows(tmp_path / "data.jsonl", [fixture_row])

    def jsonl(name: str, system: str, patch: str) -> str:
        row = {"instance_id": pid, "model_name_or_path": system, "model_patch": patch}
        (tmp_path / name).write_text(json.dumps(row) + "\n")
        return str(tmp_path / name)

    gold = {pid: {"instance_id": pid, "model_name_or_path": "sys-b", "model_patch": repo.patch}}
    (tmp_path / "b.json").write_text(json.dumps(gold))
    with_bad_row = jsonl("c.jsonl", "sys-c", "")
    with open(with_bad_row, "a") as f:  # a row missing a field: skipped, recorded, not fatal
        f.write(json.dumps({"instance_id": pid, "model_name_or_path": "sys-c"}) + "\n")
    files = [
        jsonl("a.jsonl", "sys-a", two_items),
        str(tmp_path / "b.json"),
        with_bad_row,
        jsonl("d.jsonl", "sys-d", STALE_PATCH),
        jsonl("e.jsonl", "sys-e", breaks_odd),
    ]
    out = tmp_path / "ensemble.jsonl"
    run_dir = tmp_path / "run"
    args = ["ensemble", *files, "--dataset", str(dataset), "--run-dir", str(run_dir)]
    args += ["--out", str(out), "--quiet", "--model", f"scripted:{POLICY}"]
    for s in FAST:
        args += ["--set", s]
    proc = _cli(*args)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "5 predictions, 1 empty, 0 duplicates, 4 distinct" in proc.stderr + proc.stdout
    [rejected] = json.loads((run_dir / "merge.json").read_text())["rejected"]
    assert "c.jsonl:2" in rejected and "missing 'model_patch'" in rejected
    [row] = [json.loads(x) for x in out.read_text().splitlines()]
    assert row["instance_id"] == pid and row["model_name_or_path"] == "codemonkeys-ensemble"
    assert "(ordered[middle - 1] + ordered[middle]) / 2" in row["model_patch"]

    selection = load_selection(run_dir, pid)
    right, wrong_two, wrong_odd, stale = (
        candidate_of(selection, s) for s in ("sys-b", "sys-a", "sys-e", "sys-d")
    )
    assert selection["chosen_patch"] == repo.patch
    # tests were generated for candidates that came without any (three testing
    # trajectories, three reproductions); each fails on the original code
    assert len(selection["tests"]) == 3
    for test in selection["matrix"]["tests"]:
        assert selection["matrix"]["cells"]["original"][test]["verdict"] == "unfixed"
        assert selection["matrix"]["cells"][stale][test]["verdict"] == "no-apply"
    assert selection["votes"] == {right: 3, wrong_odd: 2, wrong_two: 1, stale: 0}
    assert selection["top_k"][0] == right and stale not in selection["top_k"]
    assert_chosen_by_the_selector(selection, right, [wrong_two, wrong_odd])

    # an ensemble run is gradable like any SWE-bench run: its rows are in the run
    proc = _cli("swebench", "evaluate", str(run_dir), timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1])["resolved"] == 1
    evaluation = json.loads((run_dir / "problems" / pid / "evaluation.json").read_text())
    assert evaluation["verdict"] == "resolved"
    assert evaluation["candidates"] == {
        right: True,
        wrong_two: False,
        wrong_odd: False,
        stale: False,
    }


def test_ctrl_c_stops_new_work_keeps_the_store_consistent_and_a_rerun_finishes(
    tmp_path, fixture_row
):
    rows = [dict(fixture_row, instance_id=f"{fixture_row['instance_id']}-int{i}") for i in range(3)]
    dataset = _write_rows(tmp_path / "data.jsonl", rows)
    run_dir = tmp_path / "run"
    args = _run_args(dataset, run_dir, "--set", "run.max_problems_in_flight=1")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [CLI, *args], env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    first = run_dir / "problems" / rows[0]["instance_id"] / "result.json"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not first.exists():
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=180)  # it stops by itself: no second Ctrl-C needed
    assert proc.returncode == 130, out  # interrupted is not success
    assert "rerun the same command to resume" in out
    assert "finished" not in out.splitlines()[-1] and "interrupted" in out.splitlines()[-1]
    status = json.loads((run_dir / "status.json").read_text())
    assert status["status"] == "interrupted"
    assert _result(run_dir, rows[0]["instance_id"])["status"] == "done"
    assert not (run_dir / "problems" / rows[2]["instance_id"] / "result.json").exists()
    for f in run_dir.rglob("*.json"):
        json.loads(f.read_text())  # every record is whole

    again = _cli(*args)
    assert again.returncode == 0, again.stdout + again.stderr
    assert all(_result(run_dir, r["instance_id"])["status"] == "done" for r in rows)
    assert json.loads((run_dir / "status.json").read_text())["status"] == "finished"


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_sigterm_during_an_outage_stops_within_seconds_removes_containers_and_records_status(
    tmp_path, fixture_row, docker_client
):
    """SIGTERM (what systemd, docker stop and CI send) while every call to the provider
    fails and is being retried: acknowledged at once, the backoff waits wake up, the
    problem ends interrupted, its containers are removed, status.json says interrupted
    and the exit code is 143."""
    import threading

    dataset = _write_rows(tmp_path / "data.jsonl", [fixture_row])
    run_dir = tmp_path / "outage-run"
    args = ["swebench", "run", "--dataset", str(dataset), "--run-dir", str(run_dir), "--quiet"]
    args += ["--model", "openai/gpt-4o", "--base-url", f"http://127.0.0.1:{_closed_port()}/v1"]
    for s in FAST:
        args += ["--set", s]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    proc = subprocess.Popen(
        [CLI, *args], env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines: list[str] = []
    retrying = threading.Event()

    def read() -> None:
        for line in proc.stdout:
            lines.append(line)
            if "retry 1/" in line:
                retrying.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert retrying.wait(300), "".join(lines)
        proc.send_signal(signal.SIGTERM)
        # the default backoff alone is minutes (8 retries up to 120 s each)
        assert proc.wait(timeout=60) == 128 + signal.SIGTERM, "".join(lines)
    finally:
        if proc.poll() is None:
            proc.kill()
    reader.join(10)
    out = "".join(lines)
    assert "SIGTERM: stopping" in out
    status = json.loads((run_dir / "status.json").read_text())
    assert status["status"] == "interrupted", status
    assert _result(run_dir, fixture_row["instance_id"])["status"] == "interrupted"
    filters = {"label": ["org.codemonkeys.managed=1", f"org.codemonkeys.run={run_dir.name}"]}
    assert docker_client.containers.list(all=True, filters=filters) == []
