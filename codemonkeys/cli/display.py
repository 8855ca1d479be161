"""How the CLI shows a job: the observers a job is handed (``pipeline.Observer``), drawing
with rich on the console. Jobs return their outcomes and never draw themselves.

``ProgressObserver``: the live display (``progress.Progress``) for ``swebench run`` and
``ensemble``; ``ConsoleObserver``: one line per stage and trajectory, and the result table
(``solve``, ``--estimate``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.syntax import Syntax
from rich.table import Table

from codemonkeys.llm.recording import CostTracker
from codemonkeys.pipeline import Observer
from codemonkeys.progress import NullProgress, Progress
from codemonkeys.run_records import ProblemResult
from codemonkeys.solve import SolveObserver


def say(console: Console, text: str, *, warning: bool = False) -> None:
    """A job's line of plain text (never read as markup)."""
    if warning:
        console.print(f"[bold yellow]warning:[/] {escape(text)}", highlight=False)
    else:
        console.print(escape(text))


class ProgressObserver(Observer):
    """Forwards pipeline events to the live display (progress.Progress)."""

    def __init__(self, console: Console, *, quiet: bool = False):
        self.console = console
        self.quiet = quiet
        self.progress: Progress = NullProgress()
        self.costs: CostTracker | None = None
        self.cap: float | None = None

    @contextmanager
    def running(self, problems: int, costs: CostTracker, cap: float | None) -> Iterator[None]:
        self.progress = Progress(
            problems, mode="quiet" if self.quiet else "auto", console=self.console
        )
        self.costs, self.cap = costs, cap
        with self.progress:
            yield

    def run_status(self, status: str) -> None:
        self.progress.run_status(status)

    def message(self, text: str, *, warning: bool = False) -> None:
        say(self.console, text, warning=warning)

    def problem_stage(self, problem_id: str, stage: str) -> None:
        self.progress.problem_stage(problem_id, stage)

    def problem_node(self, problem_id: str, node: str) -> None:
        self.progress.problem_node(problem_id, node)

    def problem_done(self, result: ProblemResult) -> None:
        self.progress.problem_done(result.id, result.status, result.cost_usd, result.error or None)
        if self.costs is not None:
            self.progress.cost(self.costs.total, self.cap)

    def problem_resumed(self, result: ProblemResult) -> None:
        self.progress.resumed(result.id, result.status)

    def event(self, problem_id: str, kind: str, **info: Any) -> None:
        if kind == "trajectory_started":
            self.progress.trajectory_started(problem_id, info.get("index"))
        elif kind == "trajectory_finished":
            self.progress.trajectory_finished(problem_id, info.get("index"))
            if self.costs is not None:
                self.progress.cost(self.costs.total, self.cap)
        elif kind == "containers":
            self.progress.containers_in_use(int(info.get("n", 0)))


class ConsoleObserver(SolveObserver):
    """``solve`` and ``--estimate``: each stage and trajectory as a line, then the result."""

    def __init__(self, console: Console):
        self.console = console
        self.started = time.monotonic()

    def message(self, text: str, *, warning: bool = False) -> None:
        say(self.console, text, warning=warning)

    def solved(self, result: ProblemResult, cost: float, seconds: float) -> None:
        _print_result(self.console, result, cost, seconds)

    def problem_stage(self, problem_id: str, stage: str) -> None:
        self.console.print(f"[bold]{stage}[/] ... ({time.monotonic() - self.started:.0f}s)")

    def event(self, problem_id: str, kind: str, **info) -> None:
        if kind.endswith("finished") and "trajectory" in kind:
            idx = info.get("index", "?")
            status = info.get("status", "")
            self.console.print(f"  trajectory {idx}: {escape(str(status))}", highlight=False)


def _print_result(console: Console, result: ProblemResult, cost: float, seconds: float) -> None:
    if result.candidates:
        table = Table(title="candidates", show_lines=False)
        for col in ("id", "votes", "from", "outcomes"):
            table.add_column(col)
        for c in result.candidates:
            mark = " (chosen)" if c.get("id") == result.chosen_id else ""
            table.add_row(
                f"{c.get('id')}{mark}",
                str(c.get("votes", "")),
                escape(", ".join(c.get("sources", []))),
                escape(str(c.get("outcomes", ""))),
            )
        console.print(table)
    status_colour = "green" if result.status == "done" else "red"
    console.print(
        f"status: [{status_colour}]{result.status}[/]  cost ${cost:.4f}  time {seconds:.0f}s"
    )
    if result.error:
        console.print(f"[red]{escape(result.error)}[/]")
    if result.reason:
        console.print(f"selector: {escape(result.reason)}")
    if result.chosen_patch:
        console.print(Syntax(result.chosen_patch, "diff", word_wrap=True))
