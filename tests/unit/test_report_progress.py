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
    assert s["eta"] is None  # one problem is not enough data for an estimate


def _simulate(total: int, parallel: int, seconds: float, progress: Progress, clock) -> list:
    """``total`` problems of ``seconds`` each, ``parallel`` at once, starts staggered by
    1 s (as the scheduler submits them); returns (true remaining, eta) at every finish."""
    events = []  # (time, kind, problem); at the same instant a finish frees the slot first
    for i in range(total):
        start = (i // parallel) * seconds + (i % parallel)
        events += [(start, 1, f"p{i}"), (start + seconds, 0, f"p{i}")]
    end = max(t for t, _, _ in events)
    seen = []
    for t, kind, pid in sorted(events):
        clock.t = 1000.0 + t
        if kind == 1:
            progress.problem_stage(pid, "context")
        else:
            progress.problem_done(pid, "done")
            seen.append((end - t, progress.snapshot()["eta"]))
    return seen


def test_eta_waits_for_enough_data_then_tracks_a_parallel_run():
    """20 problems of 100 s, 4 at a time: the first to finish used to give 19 x 100 s =
    1900 s for a run with ~400 s left."""
    clock = FakeClock()
    p = Progress(20, mode="off", clock=clock)
    seen = _simulate(20, 4, 100.0, p, clock)
    assert [eta for _, eta in seen[:2]] == [None, None]  # too few finished: no guess
    for truth, eta in seen[2:]:
        assert eta is not None and abs(eta - truth) <= 0.25 * truth + 5, (truth, eta)


def test_resumed_problems_count_as_done_but_not_in_the_rate():
    clock = FakeClock()
    p = Progress(6, mode="off", clock=clock, eta_min_samples=1)
    p.resumed("old1", "done")
    p.resumed("old2", "failed")
    p.problem_stage("new", "context")
    clock.t += 60
    p.problem_done("new", "done")
    s = p.snapshot()
    assert s["done"] == 3 and s["statuses"] == {"done": 2, "failed": 1}
    assert s["eta"] == 180.0  # three left, one at a time, 60 s each this session


def test_quiet_mode_prints_one_line_per_problem_and_a_summary():
    out = io.StringIO()
    clock = FakeClock()
    with Progress(2, mode="quiet", stream=out, clock=clock, eta_min_samples=1) as p:
        p.cost(0.75, None)
        p.problem_stage("repo__a-1", "context")
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
    assert lines[2].startswith("finished: 1/2 problems done (done 1, failed 1)")
    assert lines[2].endswith("errors 1")


def test_quiet_mode_lists_resumed_problems_so_the_numbering_has_no_gaps():
    out = io.StringIO()
    with Progress(3, mode="quiet", stream=out) as p:
        p.resumed("repo__a-1", "done")
        p.problem_done("repo__b-2", "done")
        p.problem_done("repo__c-3", "done")
    lines = out.getvalue().splitlines()
    assert [ln.split()[0] for ln in lines[:3]] == ["[1/3]", "[2/3]", "[3/3]"]
    assert "repo__a-1" in lines[0] and "finished earlier" in lines[0]


def test_an_interrupted_run_is_not_reported_as_finished_with_errors():
    """Ctrl-C during 3 problems used to end with "finished 3/3 ... errors 3"."""
    out = io.StringIO()
    with Progress(3, mode="quiet", stream=out) as p:
        for pid in ("a", "b"):
            p.problem_stage(pid, "generation")
            p.problem_done(pid, "interrupted", error="Interrupted: stop requested")
        p.run_status("interrupted")
    summary = out.getvalue().splitlines()[-1]
    assert summary.startswith("interrupted: 0/3 problems done")
    assert "interrupted 2" in summary and "not started 1" in summary
    assert summary.endswith("errors 0")


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
