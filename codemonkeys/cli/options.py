"""Options several commands share, defined once (typer ``Annotated`` aliases)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="TOML config file (default ./codemonkeys.toml)."),
]
SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", "-s", help="Override a config value: section.key=value (repeatable)."),
]
ModelOpt = Annotated[
    str | None,
    typer.Option(
        "--model",
        "-m",
        help="Primary model: anthropic/<name>, openai/<name>, scripted:<policy.py>, replay:<calls.jsonl>.",
    ),
]
RelevanceModelOpt = Annotated[
    str | None,
    typer.Option(
        "--relevance-model",
        help="Cheap model that reads every file (default: the primary provider's small model, e.g. anthropic/claude-haiku-4-5, openai/gpt-5-mini).",
    ),
]
BaseUrlOpt = Annotated[
    str | None,
    typer.Option(
        "--base-url", help="Base URL of an OpenAI-compatible server for the primary model."
    ),
]
MaxCostOpt = Annotated[
    float | None, typer.Option("--max-cost", help="Stop starting new work at this many USD.")
]
VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")]
QuietOpt = Annotated[
    bool,
    typer.Option("--quiet", "-q", help="One line per problem instead of the live display."),
]
InstanceOpt = Annotated[
    list[str] | None, typer.Option("--instance", help="An instance id (repeatable).")
]
SliceOpt = Annotated[
    str | None, typer.Option("--slice", help="Python-style slice of the instances, e.g. 0:20.")
]
RunDirArg = Annotated[Path, typer.Argument(help="A run directory.")]
RayOpt = Annotated[
    str | None,
    typer.Option(
        "--ray",
        metavar="ADDRESS",
        help="Run the problems as tasks on a Ray cluster: auto (the one `ray start` joined; "
        "what a bare --ray means), local (start one here), host:port or ray://host:10001 "
        "(docs/distributed.md).",
    ),
]
