"""The typer app: every command registered from its module, and the one place where a
user-facing error (``errors.CodemonkeysError``) becomes a message, a fix and an exit
status instead of a traceback."""

from __future__ import annotations

import sys
from typing import Any

import typer
from typer.core import TyperGroup

from codemonkeys.cli import ensemble, housekeeping, runs, solve, swebench
from codemonkeys.cli.common import console, print_error
from codemonkeys.errors import CodemonkeysError


class ReportingGroup(TyperGroup):
    """Runs a command; a ``CodemonkeysError`` from any command (or sub-command) is printed
    as ``error: message`` + ``fix:`` and ends the process with the error's exit code."""

    def invoke(self, ctx: Any) -> Any:  # typer's (vendored) click Context
        try:
            return super().invoke(ctx)
        except CodemonkeysError as e:
            print_error(e)
            raise typer.Exit(e.exit_code) from e


app = typer.Typer(
    cls=ReportingGroup,
    no_args_is_help=True,
    add_completion=False,
    help="Resolve GitHub issues by scaling test-time compute (the CodeMonkeys method).",
    pretty_exceptions_enable=False,
)
app.add_typer(housekeeping.config_app, name="config")
app.add_typer(swebench.swebench_app, name="swebench")
app.command("solve")(solve.solve)
app.command("ensemble")(ensemble.ensemble)
app.command("report")(runs.report)
app.command("show")(runs.show)
app.command("doctor")(housekeeping.doctor)
app.command("clean")(housekeeping.clean)
app.command("version")(housekeeping.version)


OPTIONAL_VALUES = {"--ray": "auto"}
"""Options whose value may be left out, and the value they then take (typer cannot say
so): ``--ray`` last or followed by another option means ``--ray auto``."""


def with_optional_values(argv: list[str]) -> list[str]:
    """``argv`` with the left-out values of ``OPTIONAL_VALUES`` filled in."""
    out: list[str] = []
    for i, arg in enumerate(argv):
        out.append(arg)
        if arg in OPTIONAL_VALUES and (i + 1 == len(argv) or argv[i + 1].startswith("-")):
            out.append(OPTIONAL_VALUES[arg])
    return out


def main() -> None:
    """The console entry (``codemonkeys``, ``python -m codemonkeys``)."""
    try:
        app(args=with_optional_values(sys.argv[1:]), prog_name="codemonkeys")
    except KeyboardInterrupt:
        console.print("interrupted")
        sys.exit(130)
