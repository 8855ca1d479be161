"""``codemonkeys report`` and ``codemonkeys show``: a finished (or running) run, read back
(the rendering is in ``codemonkeys.report`` and ``codemonkeys.show``)."""

from __future__ import annotations

import json
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


WhatIfOpt = Annotated[
    bool,
    typer.Option(
        "--what-if",
        help="Estimate resolve rate, coverage and cost for fewer samples, attempts or "
        "temperatures from the run's records (no new calls); recommend the cheapest "
        "within --margin of the best.",
    ),
]
MarginOpt = Annotated[
    float, typer.Option("--margin", min=0.0, max=1.0, help="What-if margin (absolute).")
]


def report(
    run_dir: RunDirArg,
    html: HtmlOpt = None,
    as_json: JsonOpt = False,
    what_if: WhatIfOpt = False,
    margin: MarginOpt = 0.02,
) -> None:
    """Resolve rate, coverage, selection accuracy, context recall, cost and time per stage,
    coverage forecasts, temperatures, adaptive sampling; ``--what-if`` for smaller budgets."""
    # command body: loads only when the command runs
    from codemonkeys.analysis.render import render_whatif_terminal

    # command body: loads only when the command runs
    from codemonkeys.analysis.runview import problem_outcomes

    # command body: loads only when the command runs
    from codemonkeys.analysis.whatif import what_if as run_what_if

    # command body: loads only when the command runs
    from codemonkeys.report import render_terminal, write_report

    if not run_dir.is_dir():
        raise UsageError(f"{run_dir} is not a run directory")
    rep, path = write_report(run_dir, html)
    whatif = run_what_if(problem_outcomes(run_dir)[0], margin=margin) if what_if else None
    if as_json:  # stdout holds the JSON alone
        if whatif is None:
            typer.echo(rep.model_dump_json(indent=2))
        else:
            both = {
                "report": rep.model_dump(mode="json"),
                "what_if": whatif.model_dump(mode="json"),
            }
            typer.echo(json.dumps(both))
    else:
        render_terminal(rep, console)
        if whatif is not None:
            render_whatif_terminal(whatif, console, limit=40)
    console.print(f"HTML report: {path}", highlight=False, soft_wrap=True)  # stderr


def show(run_dir: RunDirArg, problem: ProblemArg, out: OutOpt = None) -> None:
    """Render one problem's trajectories, tests, diffs and votes as HTML."""
    from codemonkeys.show import write_show  # command body: loads only when the command runs

    with user_errors_from(FileNotFoundError, KeyError, ValueError):
        path = write_show(run_dir, problem, out)
    console.print(f"wrote {path}")
