"""codemonkeys: resolve GitHub issues by scaling test-time compute.

The command line only parses options and calls the module that does the job:
solve.py (one issue, local repo), swebench/run.py (SWE-bench runs), ensemble.py,
report.py / show.py, doctor.py.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from codemonkeys.config import Config, ConfigError, load_config

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="Resolve GitHub issues by scaling test-time compute (the CodeMonkeys method).",
    pretty_exceptions_enable=False,
)
config_app = typer.Typer(no_args_is_help=True, help="Inspect the configuration.")
swebench_app = typer.Typer(no_args_is_help=True, help="SWE-bench runs: run and evaluate.")
app.add_typer(config_app, name="config")
app.add_typer(swebench_app, name="swebench")

console = Console(stderr=True)

# -- shared options ------------------------------------------------------------------------
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
    typer.Option("--relevance-model", help="Cheap model that reads every file (default: primary)."),
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


def _setup_logging(verbose: bool) -> None:
    from rich.logging import RichHandler

    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(message)s",
        handlers=[RichHandler(console=console, show_path=False, show_time=False)],
        force=True,
    )
    for noisy in ("httpx", "httpcore", "docker", "urllib3", "anthropic", "openai"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _fail(message: str, code: int = 2) -> typer.Exit:
    console.print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    return typer.Exit(code)


def build_config(
    config: Path | None,
    overrides: list[str] | None,
    *,
    model: str | None = None,
    relevance_model: str | None = None,
    base_url: str | None = None,
    max_cost: float | None = None,
) -> Config:
    items = list(overrides or [])
    if model:
        items.append(f'models.primary.model="{model}"')
    if base_url:
        items.append(f'models.primary.base_url="{base_url}"')
    if relevance_model:
        items.append(f'models.relevance.model="{relevance_model}"')
        if base_url and relevance_model.startswith("openai/"):
            items.append(f'models.relevance.base_url="{base_url}"')
    if max_cost is not None:
        items.append(f"run.max_cost_usd={max_cost}")
    try:
        return load_config(config, items)
    except ConfigError as e:
        raise _fail(str(e)) from e


# -- config --------------------------------------------------------------------------------
@config_app.command("show")
def config_show(
    config: ConfigOpt = None,
    set_: SetOpt = None,
    model: ModelOpt = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="JSON instead of TOML-like text.")
    ] = False,
) -> None:
    """Print the effective configuration (defaults < file < environment < --set)."""
    cfg = build_config(config, set_, model=model)
    data = cfg.model_dump(mode="json")
    if as_json:
        typer.echo(json.dumps(data, indent=2))
        return
    typer.echo(_to_toml(data))
    typer.echo(
        "# fingerprints: "
        + ", ".join(
            f"{s}={cfg.fingerprint(s)}" for s in ("relevance", "context", "generation", "selection")
        )
    )


def _to_toml(data: dict, prefix: str = "") -> str:
    """Readable TOML-like rendering (scalars first, then sub-tables)."""
    lines: list[str] = []
    tables = []
    for k, v in data.items():
        if isinstance(v, dict):
            tables.append((k, v))
        else:
            lines.append(f"{k} = {json.dumps(v)}")
    out = ("\n".join(lines) + "\n") if lines else ""
    for k, v in tables:
        name = f"{prefix}.{k}" if prefix else k
        out += f"\n[{name}]\n" + _to_toml(v, name)
    return out


# -- doctor / clean ------------------------------------------------------------------------
@app.command()
def doctor(config: ConfigOpt = None, set_: SetOpt = None, model: ModelOpt = None) -> None:
    """Check Python, the Docker engine, images, model keys (presence only) and disk space."""
    from codemonkeys.doctor import run_checks

    cfg = build_config(config, set_, model=model)
    checks = run_checks(cfg)
    ok = True
    for check in checks:
        mark = {"ok": "[green]ok[/]", "warn": "[yellow]warn[/]", "fail": "[red]FAIL[/]"}[
            check.status
        ]
        console.print(f"{mark}  {check.name}: {escape(check.detail)}", highlight=False)
        if check.fix and check.status != "ok":
            console.print(f"      fix: {escape(check.fix)}", highlight=False)
        ok = ok and check.status != "fail"
    raise typer.Exit(0 if ok else 1)


@app.command()
def clean(
    run_id: Annotated[str | None, typer.Option(help="Only containers of this run.")] = None,
) -> None:
    """Remove sandbox containers left behind by a crashed or killed run."""
    from codemonkeys.sandbox import clean_containers

    try:
        n = clean_containers(run_id=run_id)
    except Exception as e:
        raise _fail(f"cannot reach the Docker engine: {e}") from e
    console.print(f"removed {n} container(s)")


@app.command()
def version() -> None:
    """Print the version."""
    from importlib.metadata import version as v

    typer.echo(v("codemonkeys"))


def main() -> None:  # pragma: no cover - console entry for `python -m codemonkeys`
    try:
        app()
    except KeyboardInterrupt:
        console.print("interrupted")
        sys.exit(130)
