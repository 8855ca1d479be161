"""A full disk: the run stops with a clear message and status, nothing already written is
damaged, and once there is space again a rerun resumes without paying a logged call twice.
On a real 2 MB tmpfs (see the ``small_disk`` fixture)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from codemonkeys.config_loading import load_config
from codemonkeys.pipeline import Observer
from codemonkeys.run_records import FINAL_STATUSES
from codemonkeys.store import DiskFull, RunStore
from codemonkeys.swebench.run import SwebenchRunOptions, run_swebench
from tests.conftest import CLI, FIXTURES, ROOT, fill_disk, make_git_repo

POLICY = FIXTURES / "policies" / "example_solver.py"
FAST = [
    "--set", "generation.samples=2",
    "--set", "generation.test_attempts=3",
    "--set", "generation.edit_attempts=3",
    "--set", "sandbox.pool_size=2",
    "--set", "context.rankings=1",
]  # fmt: skip


def _every_record_is_whole(run_dir: Path) -> None:
    for f in run_dir.rglob("*.json"):
        json.loads(f.read_text())
    for f in run_dir.rglob("*.jsonl"):
        for line in f.read_text().splitlines():
            json.loads(line)  # no fragment, no two records glued together
    store = RunStore(run_dir)
    for pid in store.problem_ids():
        store.read_prompts(pid)


def test_solve_on_a_full_disk_stops_clearly_damages_nothing_and_resumes(small_disk, tmp_path):
    repo = tmp_path / "bumper"
    shutil.copytree(FIXTURES / "shell_project", repo)
    issue = (repo / "ISSUE.md").read_text()
    (repo / "ISSUE.md").unlink()
    make_git_repo(repo, {})
    run_dir = small_disk / "run"
    args = ["solve", "--repo", str(repo), "--issue", issue, "--sandbox", "local",
            "--model", f"scripted:{POLICY}", "--run-dir", str(run_dir), *FAST]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}

    # room for the start (config, the space reserve, the call index) but not for the
    # whole run (~90 KB of records)
    filler = fill_disk(small_disk, 256 * 1024 + 100 * 1024)
    full = subprocess.run(
        [CLI, *args], capture_output=True, text=True, env=env, cwd=ROOT, timeout=300
    )
    out = full.stdout + full.stderr
    assert full.returncode != 0, out
    assert "no space left on the device" in " ".join(out.split()), out
    assert "Traceback" not in out
    _every_record_is_whole(run_dir)
    # a result written from the freed reserve is unfinished (never a final answer), so a
    # rerun redoes it
    for result in run_dir.glob("problems/*/result.json"):
        assert json.loads(result.read_text())["data"]["status"] not in FINAL_STATUSES
    logged = [json.loads(x) for x in (run_dir / "calls.jsonl").read_text().splitlines()]
    assert logged, "the disk filled before the first call: nothing to resume"

    filler.unlink()
    again = subprocess.run(
        [CLI, *args], capture_output=True, text=True, env=env, cwd=ROOT, timeout=300
    )
    assert again.returncode == 0, again.stdout + again.stderr
    (result,) = run_dir.glob("problems/*/result.json")
    assert json.loads(result.read_text())["data"]["status"] == "done"
    calls = [json.loads(x) for x in (run_dir / "calls.jsonl").read_text().splitlines()]
    assert calls[: len(logged)] == logged  # what was written before stayed as it was
    hashes = [c["request_hash"] for c in calls]
    assert len(hashes) == len(set(hashes)), "a call logged before the disk filled was paid again"
    _every_record_is_whole(run_dir)


def test_dataset_jsonl_is_rewritten_whole_or_not_at_all(small_disk, tmp_path):
    """Rewriting dataset.jsonl on a disk without room for it used to truncate it first."""
    run_dir = small_disk / "run"
    run_dir.mkdir()
    row = {"instance_id": "o__r-1", "repo": "o/r", "base_commit": "abc", "problem_statement": "bug"}
    old = json.dumps(row) + "\n"
    (run_dir / "dataset.jsonl").write_text(old)
    big = [dict(row, instance_id=f"o__r-{i}", problem_statement="x" * 4000) for i in range(600)]
    rows = tmp_path / "rows.jsonl"
    rows.write_text("".join(json.dumps(r) + "\n" for r in big))
    fill_disk(small_disk, 256 * 1024 + 64 * 1024)  # the 2.4 MB of new rows cannot fit
    opts = SwebenchRunOptions(dataset=str(rows), run_dir=run_dir, quiet=True)
    config = load_config(None, ['models.primary.model="scripted:x.py"'], env={})
    with pytest.raises(DiskFull, match="no space left"):
        run_swebench(opts, config, Observer())
    assert (run_dir / "dataset.jsonl").read_text() == old


def test_a_run_that_hit_a_full_disk_says_so_in_status_and_exit_code(small_disk):
    from codemonkeys.config import Config
    from codemonkeys.pipeline import open_run, write_status

    rt = open_run(small_disk / "run", Config())
    fill_disk(small_disk, 0)
    with pytest.raises(DiskFull):
        rt.store.write_json(Path("some-record.json"), {"x": "y" * 10_000})
    summary = write_status(rt, [])
    assert summary.status == "disk_full" and summary.exit_code == 4
    assert "no space left" in summary.describe()
    # the reserve freed at the first ENOSPC is what lets status.json be written
    assert json.loads((small_disk / "run" / "status.json").read_text())["status"] == "disk_full"
    rt.close()
