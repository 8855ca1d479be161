"""The harness runner's own parts (no Docker): each job's seconds are written even when the
harness raises for it, and a line cut by a kill is skipped when read back."""

from __future__ import annotations

import pytest

from codemonkeys.swebench.harness_io import harness_command, read_job_seconds
from codemonkeys.swebench.harness_runner import timed_jobs


def test_every_job_leaves_its_seconds_also_when_the_harness_raises(tmp_path):
    times = tmp_path / "times.jsonl"

    def run_instance(test_spec, pred, client, run_id, timeout):
        if pred["instance_id"] == "bad":
            raise RuntimeError("container failed")
        return pred["instance_id"], {}

    run = timed_jobs(run_instance, times)
    assert run(None, {"instance_id": "ok"}, None, "r.L0", 60) == ("ok", {})
    with pytest.raises(RuntimeError):
        run(None, {"instance_id": "bad"}, None, "r.L1", 60)
    with times.open("a") as out:
        out.write('{"run_id": "r.L2", "instance_id": "cut", "seco')  # killed mid-line
    seconds = read_job_seconds(times)
    assert set(seconds) == {("r.L0", "ok"), ("r.L1", "bad")}
    assert all(s >= 0 for s in seconds.values())
    assert read_job_seconds(tmp_path / "absent.jsonl") == {}


def test_the_command_runs_our_runner_with_the_harness_options(tmp_path):
    cmd = harness_command(
        tmp_path / "d.jsonl", tmp_path / "j.jsonl", max_workers=3, timeout=99,
        times_file=tmp_path / "t.jsonl",
    )  # fmt: skip
    assert cmd[1:3] == ["-m", "codemonkeys.swebench.harness_runner"]
    assert cmd[cmd.index("--max_workers") + 1] == "3" and cmd[cmd.index("--timeout") + 1] == "99"
    assert cmd[cmd.index("--times") + 1] == str(tmp_path / "t.jsonl")


def test_two_candidates_of_one_instance_log_to_their_own_files(tmp_path):
    """The harness names a logger after the instance; graded at the same time, two
    candidates of one instance shared it and each log got the other's lines (the patch
    apply failure a verdict is read from)."""
    from swebench.logger import close_logger, setup_logger

    from codemonkeys.swebench.harness_runner import own_loggers

    setup = own_loggers(setup_logger)
    files = [tmp_path / f"run.L{k}" / "m" / "demo__x-1" / "run_instance.log" for k in (0, 1)]
    loggers = [setup("demo__x-1", f) for f in files]
    loggers[0].info("applied")
    loggers[1].info(">>>>> Patch Apply Failed")
    for lg in loggers:
        close_logger(lg)
    assert "Patch Apply Failed" not in files[0].read_text() and "applied" in files[0].read_text()
    assert "Patch Apply Failed" in files[1].read_text() and "applied" not in files[1].read_text()
