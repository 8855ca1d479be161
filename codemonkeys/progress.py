"""Live progress of a run: problems by stage, trajectories running, containers in use, cost
against the cap, errors and an ETA.

The pipeline only calls methods on a ``Progress`` (from any thread); how it is shown is
decided here: a rich live display on a terminal, one line per finished problem in quiet
mode (logs, CI, a non-TTY), or nothing. Nothing here touches the pipeline's state, and a
rendering failure never propagates into the pipeline.
"""

from __future__ import annotations

import contextlib
import statistics
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from typing import IO, Any, Literal

Mode = Literal["auto", "live", "quiet", "off"]

STAGE_ORDER = ("queued", "context", "generation", "selection", "evaluation")
ETA_MIN_SAMPLES = 3
"""No ETA until this many problems finished in this invocation (one is noise: the first to
finish is the quickest, and problems run in parallel)."""
STOPPED = {"interrupted": "interrupted", "budget_exhausted": "stopped at the cost cap"}


class Progress:
    """Thread-safe progress sink. Use as a context manager (starts/stops the live display).

    ``total`` is the number of problems the run will attempt (for the ETA and the bar);
    problems already finished in an earlier invocation can be reported with ``resumed``.
    """

    def __init__(
        self,
        total: int,
        *,
        mode: Mode = "auto",
        stream: IO[str] | None = None,
        console: Any | None = None,
        clock: Callable[[], float] = time.monotonic,
        refresh_per_second: float = 4.0,
        max_errors_shown: int = 5,
        eta_min_samples: int = ETA_MIN_SAMPLES,
    ):
        self.total = total
        if stream is None:
            stream = getattr(console, "file", None) or sys.stderr
        self._stream = stream
        self._clock = clock
        self._lock = threading.RLock()
        self._start = clock()
        self._stage: dict[str, str] = {}
        self._nodes: dict[str, str] = {}
        """problem -> the cluster node it runs on (distributed runs), while in flight"""
        self._started: dict[str, float] = {}
        """problem -> when its first stage began (this invocation), while in flight"""
        self._durations: list[float] = []
        """seconds per problem finished in this invocation (start to finish)"""
        self._max_in_flight = 0
        self._eta_min_samples = eta_min_samples
        self._run_status: str | None = None
        self._done: dict[str, str] = {}
        self._done_this_session = 0
        self._resumed = 0
        self._trajectories: Counter[str] = Counter()
        self._trajectories_done = 0
        self._containers = 0
        self._cost = 0.0
        self._cap: float | None = None
        self._errors: deque[tuple[str, str]] = deque(maxlen=max_errors_shown)
        self._error_count = 0
        self._refresh = refresh_per_second
        self._live: Any | None = None
        if mode == "auto":
            if console is not None:
                is_tty = bool(getattr(console, "is_terminal", False))
            else:
                is_tty = bool(getattr(self._stream, "isatty", lambda: False)())
            mode = "live" if is_tty else "quiet"
        self.mode: Mode = mode
        self._console = console

    # -- the pipeline's interface ------------------------------------------------------
    def problem_stage(self, problem_id: str, stage: str) -> None:
        with self._lock:
            self._stage[problem_id] = stage
            self._started.setdefault(problem_id, self._clock())
            self._max_in_flight = max(self._max_in_flight, len(self._started))
        self._update()

    def problem_node(self, problem_id: str, node: str) -> None:
        """Where the problem runs (a distributed run): shown per node while in flight."""
        with self._lock:
            self._nodes[problem_id] = node
            line = f"{problem_id} on node {node}"
        if self.mode == "quiet":
            self._write(line)
        self._update()

    def problem_done(
        self, problem_id: str, status: str, cost: float | None = None, error: str | None = None
    ) -> None:
        with self._lock:
            self._nodes.pop(problem_id, None)
            self._stage.pop(problem_id, None)
            self._trajectories.pop(problem_id, None)
            started = self._started.pop(problem_id, None)
            if started is not None:
                self._durations.append(self._clock() - started)
            first_time = problem_id not in self._done
            self._done[problem_id] = status
            if first_time:
                self._done_this_session += 1
            if error and status == "failed":  # an interrupted problem is stopped, not an error
                self._error_count += 1
                self._errors.append((problem_id, _one_line(error)))
            line = self._done_line(problem_id, status, cost, error)
        if self.mode == "quiet":
            self._write(line)
        self._update()

    def resumed(self, problem_id: str, status: str) -> None:
        """A problem finished by an earlier invocation (counts as done, not in the ETA);
        listed in quiet mode like any other, so the numbering has no gaps."""
        with self._lock:
            self._stage.pop(problem_id, None)
            self._nodes.pop(problem_id, None)
            self._started.pop(problem_id, None)
            if problem_id not in self._done:
                self._resumed += 1
            self._done[problem_id] = status
            line = f"[{len(self._done)}/{self.total}] {problem_id} {status} (finished earlier)"
        if self.mode == "quiet":
            self._write(line)
        self._update()

    def run_status(self, status: str) -> None:
        """How the run ended (finished / interrupted / budget_exhausted), for the summary."""
        with self._lock:
            self._run_status = status

    def trajectory_started(self, problem_id: str, index: int | None = None) -> None:
        with self._lock:
            self._trajectories[problem_id] += 1
        self._update()

    def trajectory_finished(self, problem_id: str, index: int | None = None) -> None:
        with self._lock:
            if self._trajectories[problem_id] > 0:
                self._trajectories[problem_id] -= 1
            self._trajectories_done += 1
        self._update()

    def containers_in_use(self, n: int) -> None:
        with self._lock:
            self._containers = n
        self._update()

    def cost(self, total: float, cap: float | None = None) -> None:
        with self._lock:
            self._cost = total
            self._cap = cap
        self._update()

    def error(self, problem_id: str, message: str) -> None:
        """A non-fatal error worth showing (the problem goes on)."""
        with self._lock:
            self._error_count += 1
            self._errors.append((problem_id, _one_line(message)))
        self._update()

    # -- state ---------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """The numbers the display shows; also handy for tests and a final summary."""
        with self._lock:
            by_stage = Counter(self._stage.values())
            done = len(self._done)
            elapsed = self._clock() - self._start
            return {
                "total": self.total,
                "done": done,
                "statuses": dict(Counter(self._done.values())),
                "by_stage": {s: by_stage[s] for s in _ordered(by_stage)},
                "nodes": _by_node(self._nodes),
                "trajectories_running": sum(self._trajectories.values()),
                "trajectories_done": self._trajectories_done,
                "containers": self._containers,
                "cost": self._cost,
                "cap": self._cap,
                "errors": self._error_count,
                "recent_errors": list(self._errors),
                "elapsed": elapsed,
                "eta": self._eta(elapsed, done),
            }

    def _eta(self, elapsed: float, done: int) -> float | None:
        """Seconds left, from the problems finished in this invocation (resumed ones take
        no time and are left out): the median time a problem takes, for the problems not
        started and what is left of those in flight, spread over as many problems as have
        run at once. None until ``eta_min_samples`` problems finished."""
        remaining = max(self.total - done, 0)
        if remaining == 0:
            return 0.0
        if len(self._durations) < self._eta_min_samples:
            return None
        typical = statistics.median(self._durations)
        now = self._clock()
        in_flight = [now - t for t in self._started.values()]
        queued = max(remaining - len(in_flight), 0)
        work = queued * typical + sum(max(typical - age, 0.0) for age in in_flight)
        return work / max(self._max_in_flight, 1)

    def _done_line(
        self, problem_id: str, status: str, cost: float | None, error: str | None
    ) -> str:
        done = len(self._done)
        parts = [f"[{done}/{self.total}]", problem_id, status]
        if cost is not None:
            parts.append(f"${cost:.2f}")
        parts.append(f"total ${self._cost:.2f}" + (f"/{self._cap:.2f}" if self._cap else ""))
        eta = self._eta(self._clock() - self._start, done)
        if eta:
            parts.append(f"eta {format_duration(eta)}")
        if error:
            parts.append(f"error: {_one_line(error)[:200]}")
        return " ".join(parts)

    # -- rendering -----------------------------------------------------------------------
    def render(self) -> Any:
        """A rich renderable of the current state."""
        from rich.console import Group
        from rich.progress_bar import ProgressBar
        from rich.table import Table
        from rich.text import Text

        s = self.snapshot()
        head = Table.grid(padding=(0, 2))
        head.add_column()
        head.add_column()
        bar = ProgressBar(total=max(s["total"], 1), completed=s["done"], width=40)
        head.add_row(Text(f"problems {s['done']}/{s['total']}", style="bold"), bar)
        stages = "  ".join(f"{k}: {v}" for k, v in s["by_stage"].items()) or "-"
        head.add_row("in flight", Text(stages))
        head.add_row(
            "trajectories",
            Text(f"{s['trajectories_running']} running, {s['trajectories_done']} finished"),
        )
        head.add_row("containers", Text(str(s["containers"])))
        for node, problems in s["nodes"].items():
            head.add_row(f"node {node}", Text(", ".join(problems)))
        cost = f"${s['cost']:.2f}"
        style = ""
        if s["cap"]:
            cost += f" of ${s['cap']:.2f} ({100 * s['cost'] / s['cap']:.0f}%)"
            style = (
                "red"
                if s["cost"] >= s["cap"]
                else ("yellow" if s["cost"] >= 0.8 * s["cap"] else "")
            )
        head.add_row("cost", Text(cost, style=style))
        statuses = "  ".join(f"{k}: {v}" for k, v in sorted(s["statuses"].items())) or "-"
        head.add_row("finished", Text(statuses))
        eta = "-" if s["eta"] is None else format_duration(s["eta"])
        head.add_row("elapsed / eta", Text(f"{format_duration(s['elapsed'])} / {eta}"))
        parts: list[Any] = [head]
        if s["errors"]:
            parts.append(Text(f"errors: {s['errors']}", style="red bold"))
            for pid, msg in s["recent_errors"]:
                parts.append(Text(f"  {pid}: {msg[:160]}", style="red"))
        return Group(*parts)

    def _update(self) -> None:
        live = self._live
        if live is not None:
            with contextlib.suppress(Exception):  # a display problem must never stop the run
                live.update(self.render())

    def _write(self, line: str) -> None:
        try:
            with self._lock:
                self._stream.write(line + "\n")
                self._stream.flush()
        except Exception:
            pass

    def start(self) -> Progress:
        if self.mode == "live" and self._live is None:
            from rich.console import Console
            from rich.live import Live

            console = self._console or Console(file=self._stream)
            self._live = Live(
                self.render(), console=console, refresh_per_second=self._refresh, transient=False
            )
            self._live.start()
        return self

    def stop(self) -> None:
        live, self._live = self._live, None
        if live is not None:
            try:
                live.update(self.render())
                live.stop()
            except Exception:
                pass
        if self.mode == "quiet":
            self._write(self.summary_line())

    def summary_line(self) -> str:
        """How the run ended: finished, interrupted or stopped at the cost cap; problems
        done (an answer: done / no_candidates) of the total, by status, errors (failed)."""
        s = self.snapshot()
        statuses = dict(s["statuses"])
        if s["total"] > s["done"]:
            statuses["not started"] = s["total"] - s["done"]
        counts = ", ".join(f"{k} {v}" for k, v in sorted(statuses.items())) or "none"
        answered = sum(statuses.get(k, 0) for k in ("done", "no_candidates"))
        head = STOPPED.get(self._run_status or "", "finished")
        if head == "finished" and "interrupted" in statuses:
            head = "interrupted"
        return (
            f"{head}: {answered}/{s['total']} problems done ({counts}) in "
            f"{format_duration(s['elapsed'])}, cost ${s['cost']:.2f}, errors {s['errors']}"
        )

    def __enter__(self) -> Progress:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class NullProgress(Progress):
    """Accepts every call and shows nothing (library use, tests)."""

    def __init__(self, total: int = 0):
        super().__init__(total, mode="off")


def format_duration(seconds: float) -> str:
    seconds = max(int(seconds), 0)
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m" if h else (f"{m}m{s:02d}s" if m else f"{s}s")


def _one_line(text: str) -> str:
    lines = [ln.strip() for ln in str(text).strip().splitlines() if ln.strip()]
    return lines[-1] if lines else ""


def _ordered(counter: Counter[str]) -> list[str]:
    order = {s: i for i, s in enumerate(STAGE_ORDER)}
    return sorted(counter, key=lambda s: (order.get(s, len(order)), s))


def _by_node(nodes: dict[str, str]) -> dict[str, list[str]]:
    """node -> the problems running there, sorted."""
    out: dict[str, list[str]] = {}
    for problem, node in sorted(nodes.items()):
        out.setdefault(node, []).append(problem)
    return out
