"""The small commands around the jobs: ``config show``, ``doctor``, ``clean``, ``version``."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.markup import escape

from codemonkeys.cli.common import ConfigInputs, console
from codemonkeys.cli.options import ConfigOpt, ModelOpt, SetOpt
from codemonkeys.errors import CodemonkeysError, DockerUnreachable

config_app = typer.Typer(no_args_is_help=True, help="Inspect the configuration.")

STAGES = ("relevance", "context", "generation", "selection")


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
    cfg = ConfigInputs(path=config, overrides=set_ or [], model=model).load()
    data = cfg.model_dump(mode="json")
    if as_json:
        typer.echo(json.dumps(data, indent=2))
        return
    typer.echo(to_toml(data))
    typer.echo("# fingerprints: " + ", ".join(f"{s}={cfg.fingerprint(s)}" for s in STAGES))


def to_toml(data: dict[str, Any], prefix: str = "") -> str:
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
        out += f"\n[{name}]\n" + to_toml(v, name)
    return out


def doctor(config: ConfigOpt = None, set_: SetOpt = None, model: ModelOpt = None) -> None:
    """Check Python, the Docker engine, images, model keys (presence only) and disk space."""
    from codemonkeys.doctor import run_checks  # command body: loads only when the command runs

    cfg = ConfigInputs(path=config, overrides=set_ or [], model=model).load()
    checks = run_checks(cfg)
    marks = {"ok": "[green]ok[/]", "warn": "[yellow]warn[/]", "fail": "[red]FAIL[/]"}
    for check in checks:
        console.print(
            f"{marks[check.status]}  {check.name}: {escape(check.detail)}", highlight=False
        )
        if check.fix and check.status != "ok":
            console.print(f"      fix: {escape(check.fix)}", highlight=False)
    raise typer.Exit(1 if any(c.status == "fail" for c in checks) else 0)


def clean(
    run_id: Annotated[str | None, typer.Option(help="Only containers of this run.")] = None,
    prepared: Annotated[
        bool,
        typer.Option(
            "--prepared", help="Also remove every prepared sandbox image (made again on use)."
        ),
    ] = False,
) -> None:
    """Remove sandbox containers and temporary directories left behind by a crashed or
    killed run (only those whose owner process is gone), and prepared sandbox images
    whose source image is gone or was rebuilt."""
    # command body: loads only when the command runs
    from codemonkeys.sandbox import clean_containers
    from codemonkeys.sandbox.prepared import remove_prepared_images

    # command body: loads only when the command runs
    from codemonkeys.tempdirs import clean_temp_dirs

    dirs = clean_temp_dirs()
    console.print(
        f"removed {len(dirs)} leftover temporary director{'y' if len(dirs) == 1 else 'ies'}"
    )
    try:
        n = clean_containers(run_id=run_id)
    except CodemonkeysError:
        raise  # e.g. the engine is unreachable: SandboxError says so
    except Exception as e:  # the engine answered with an error
        raise DockerUnreachable(
            f"{type(e).__name__}: {e}", fix="start Docker (dockerd), then run clean again"
        ) from e
    console.print(f"removed {n} container(s)")
    images = remove_prepared_images(orphans_only=not prepared)
    console.print(f"removed {images} prepared sandbox image(s)")


def version() -> None:
    """Print the version."""
    from importlib.metadata import version as installed_version

    typer.echo(installed_version("codemonkeys"))
