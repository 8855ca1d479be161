"""codemonkeys.progress: the state the pipeline reports, quiet mode lines, live rendering,
and thread safety."""

from __future__ import annotations

import io
import threading

from rich.console import Console

from codemonkeys.progress import NullProgress, Progress, format_duration


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_snapshot_counts_stages_trajectories_containers_cost_and_eta():
    clock = FakeClock()
    p = Progress(4, mode="off", clock=clock)
    p.problem_stage("a", "context")
    p.problem_stage("b", "generation")
    p.problem_stage("c", "generation")
    p.trajectory_started("b", 0)
    p.trajectory_started("b", 1)
    p.trajectory_started("c", 0)
    p.trajectory_finished("b", 0)
    p.containers_in_use(3)
    p.cost(1.25, 10.0)
    s = p.snapshot()
    assert s["by_stage"] == {"context": 1, "generation": 2}
    assert (s["trajectories_running"], s["trajectories_done"]) == (2, 1)
    assert (s["containers"], s["cost"], s["cap"]) == (3, 1.25, 10.0)
    assert s["eta"] is None  # nothing finished yet: no rate to extrapolate

    clock.t += 100
    p.problem_done("a", "done", 0.5)
    s = p.snapshot()
    assert s["done"] == 1 and "a" not in s["by_stage"]
    assert s["eta"] == 300.0  # 3 left at 100 s per problem


def test_resumed_problems_count_as_done_but_not_in_the_rate():
    clock = FakeClock()
    p = Progress(4, mode="off", clock=clock)
    p.resumed("old1", "done")
    p.resumed("old2", "failed")
    clock.t += 60
    p.problem_done("new", "done")
    s = p.snapshot()
    assert s["done"] == 3 and s["statuses"] == {"done": 2, "failed": 1}
    assert s["eta"] == 60.0  # one left, one finished per 60 s this session


def test_quiet_mode_prints_one_line_per_problem_and_a_summary():
    out = io.StringIO()
    clock = FakeClock()
    with Progress(2, mode="quiet", stream=out, clock=clock) as p:
        p.cost(0.75, None)
        clock.t += 30
        p.problem_done("repo__a-1", "done", 0.75)
        p.problem_done(
            "repo__b-2", "failed", 0.0, error="Traceback...\nRuntimeError: image missing"
        )
    lines = out.getvalue().splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("[1/2] repo__a-1 done $0.75") and "eta 30s" in lines[0]
    assert (
        lines[1].startswith("[2/2] repo__b-2 failed") and "RuntimeError: image missing" in lines[1]
    )
    assert lines[2].startswith("finished 2/2 problems (done 1, failed 1)")


def test_auto_mode_is_quiet_without_a_terminal():
    assert Progress(1, stream=io.StringIO()).mode == "quiet"


def test_live_display_renders_the_state():
    buf = io.StringIO()
    console = Console(file=buf, width=120, force_terminal=True, color_system=None)
    p = Progress(3, mode="live", console=console)
    with p:
        p.problem_stage("x", "selection")
        p.trajectory_started("x")
        p.containers_in_use(2)
        p.cost(9.0, 10.0)
        p.problem_done("y", "failed", error="API error after retries")
    console.print(p.render())
    text = buf.getvalue()
    assert "problems 1/3" in text and "selection: 1" in text
    assert "$9.00 of $10.00 (90%)" in text
    assert "containers" in text and "API error after retries" in text


def test_calls_from_many_threads_are_all_counted():
    p = NullProgress(400)

    def work(start: int) -> None:
        for i in range(start, start + 100):
            p.problem_stage(f"p{i}", "generation")
            p.trajectory_started(f"p{i}")
            p.trajectory_finished(f"p{i}")
            p.problem_done(f"p{i}", "done")

    threads = [threading.Thread(target=work, args=(k * 100,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    s = p.snapshot()
    assert s["done"] == 400 and s["trajectories_done"] == 400 and s["by_stage"] == {}


def test_format_duration():
    assert format_duration(5) == "5s"
    assert format_duration(125) == "2m05s"
    assert format_duration(3 * 3600 + 120) == "3h02m"


def test_a_console_decides_auto_mode_and_receives_quiet_lines():
    buf = io.StringIO()
    console = Console(file=buf, force_terminal=False)
    p = Progress(1, mode="auto", console=console)
    assert p.mode == "quiet"
    p.problem_done("a", "done", 0.1)
    assert buf.getvalue().startswith("[1/1] a done $0.10")
