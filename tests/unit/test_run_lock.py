"""Two invocations on one run directory: the second refuses and names the first."""

from __future__ import annotations

import os
import subprocess

import pytest

from codemonkeys.config import Config
from codemonkeys.pipeline import open_run
from codemonkeys.store import RunLock, RunLocked
from tests.conftest import CLI, FIXTURES, ROOT


def test_a_second_open_of_a_held_run_is_refused_naming_the_holder(tmp_path):
    rt = open_run(tmp_path / "run", Config())
    with pytest.raises(RunLocked, match=f"pid {os.getpid()}"):
        open_run(tmp_path / "run", Config())
    rt.close()
    again = open_run(tmp_path / "run", Config())  # released: the next invocation proceeds
    again.close()


def test_a_second_swebench_run_on_the_same_run_dir_exits_non_zero_and_says_who(tmp_path):
    run_dir = tmp_path / "run"
    holder = RunLock(run_dir).acquire()
    dataset = tmp_path / "rows.jsonl"
    dataset.write_text(
        '{"instance_id": "o__r-1", "repo": "o/r", "base_commit": "abc", '
        '"problem_statement": "bug", "patch": "", "test_patch": ""}\n'
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    args = ["swebench", "run", "--dataset", str(dataset), "--run-dir", str(run_dir), "-q"]
    args += ["--model", f"scripted:{FIXTURES / 'policies' / 'example_solver.py'}"]
    try:
        proc = subprocess.run(
            [CLI, *args], capture_output=True, text=True, timeout=120, env=env, cwd=ROOT
        )
    finally:
        holder.release()
    assert proc.returncode != 0
    assert "in use by another invocation" in proc.stderr
    assert f"pid {os.getpid()}" in proc.stderr
    assert not (run_dir / "config.json").exists()  # nothing of the holder's run was touched
