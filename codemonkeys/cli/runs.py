"""``codemonkeys report`` and ``codemonkeys show``: a finished (or running) run, read back
(the rendering is in ``codemonkeys.report`` and ``codemonkeys.show``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from codemonkeys.cli.common import console, user_errors_from
from codemonkeys.cli.options import RunDirArg
from codemonkeys.errors import UsageError

HtmlOpt = Annotated[
    Path | None,
    typer.Option("--html", help="Write the HTML report here (default <run>/report.html)."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the report as JSON.")]
ProblemArg = Annotated[str, typer.Argument(help="Problem (instance) id.")]
OutOpt = Annotated[Path | None, typer.Option("--out", "-o", help="HTML file to write.")]


def report(run_dir: RunDirArg, html: HtmlOpt = None, as_json: JsonOpt = False) -> None:
    """Resolve rate, coverage, selection accuracy, context recall, cost and time per stage."""
    from codemonkeys.report import render_terminal, write_report

    if not run_dir.is_dir():
        raise UsageError(f"{run_dir} is not a run directory")
    rep, path = write_report(run_dir, html)
    if as_json:
        typer.echo(rep.model_dump_json(indent=2))  # stdout holds the JSON alone
    else:
        render_terminal(rep, console)
    console.print(f"HTML report: {path}", highlight=False, soft_wrap=True)  # stderr


def show(run_dir: RunDirArg, problem: ProblemArg, out: OutOpt = None) -> None:
    """Render one problem's trajectories, tests, diffs and votes as HTML."""
    from codemonkeys.show import write_show

    with user_errors_from(FileNotFoundError, KeyError, ValueError):
        path = write_show(run_dir, problem, out)
    console.print(f"wrote {path}")
