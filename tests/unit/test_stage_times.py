"""Stage times of a resumed problem are the sum of its invocations: an interrupted
generation followed by a resume used to report only the resume's 0.05 s."""

from __future__ import annotations

import contextlib
from types import SimpleNamespace

import pytest

from codemonkeys import pipeline
from codemonkeys.candidates import CandidateSet
from codemonkeys.config import Config
from codemonkeys.errors import Interrupted
from codemonkeys.problem import Problem
from codemonkeys.selection.records import SelectionRecord

PATCH = "diff --git a/x.py b/x.py\n--- a/x.py\n+++ b/x.py\n@@ -1 +1 @@\n-a\n+b\n"


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


class FakePool:
    """The sandbox boundary: no containers needed for timing."""

    def __init__(self, *a, **kw) -> None:
        self.stats: dict[str, float] = {}

    @contextlib.contextmanager
    def lease(self):
        yield SimpleNamespace(export_repo=lambda dest: [])

    def close(self) -> None: ...


@pytest.fixture
def stages(monkeypatch):
    """Context takes 30 s; generation 100 s then Ctrl-C on the first call, 0.05 s (all
    trajectories already recorded) on the second; selection 2 s."""
    import codemonkeys.context.stage as context_stage

    clock = Clock()
    calls = {"generation": 0}
    monkeypatch.setattr(pipeline.time, "monotonic", clock)
    monkeypatch.setattr(pipeline, "SandboxPool", FakePool)
    monkeypatch.setattr(pipeline, "spec_from_config", lambda *a, **kw: None)

    def context(*a, **kw):
        clock.t += 30
        return SimpleNamespace(render=lambda: "", missing="")

    def generation(*a, **kw):
        calls["generation"] += 1
        if calls["generation"] == 1:
            clock.t += 100
            raise Interrupted("stop requested")
        clock.t += 0.05
        cs = CandidateSet()
        cs.add_patch(PATCH, "codemonkeys:traj-0")
        return SimpleNamespace(candidates=cs, errors=[], trajectories=[])

    def selection(problem, candidates, *a, **kw):
        clock.t += 2
        c = candidates.candidates[0]
        return SelectionRecord(
            problem_id=problem.id,
            candidates=candidates.candidates,
            chosen_id=c.id,
            chosen_patch=c.patch,
        )

    monkeypatch.setattr(context_stage, "run_context", context)
    monkeypatch.setattr(pipeline, "run_generation", generation)
    monkeypatch.setattr(pipeline, "run_selection", selection)
    return clock


def test_stage_seconds_accumulate_across_an_interrupt_and_a_resume(tmp_path, stages):
    problem = Problem(id="demo__lib-1", repo="demo/lib", issue="it breaks")
    first = pipeline.solve_problem(pipeline.open_run(tmp_path / "run", Config()), problem)
    assert first.status == "interrupted"
    assert first.stage_seconds == {"context": 30, "generation": 100}

    second = pipeline.solve_problem(pipeline.open_run(tmp_path / "run", Config()), problem)
    assert second.status == "done"
    # context ran again (30 s, its record answered nothing here) and generation resumed
    assert second.stage_seconds == pytest.approx(
        {"context": 60, "generation": 100.05, "selection": 2}
    )
