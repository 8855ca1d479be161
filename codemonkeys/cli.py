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
from codemonkeys.interrupts import JobSignals
from codemonkeys.store import DiskFull, RunLocked

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
RayOpt = Annotated[
    str | None,
    typer.Option(
        "--ray",
        metavar="ADDRESS",
        help="Run the problems as tasks on a Ray cluster: auto (the one `ray start` joined), "
        "local (start one here), host:port or ray://host:10001 (docs/distributed.md).",
    ),
]


class OneLineFormatter(logging.Formatter):
    """``LEVEL name: message`` on one line (a traceback or a multi-line message joined
    with " | "), for logs that are read line by line (quiet mode, CI)."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        return " | ".join(line.strip() for line in text.splitlines() if line.strip())


def _setup_logging(verbose: bool, quiet: bool = False) -> None:
    """Rich log lines on the console; with ``quiet`` only warnings and errors, one line
    each (``--verbose`` still shows everything)."""
    from rich.logging import RichHandler

    handler: logging.Handler
    if quiet and not verbose:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(OneLineFormatter("%(levelname)s %(name)s: %(message)s"))
    else:
        handler = RichHandler(console=console, show_path=False, show_time=False)
    logging.basicConfig(
        level=logging.DEBUG if verbose else (logging.WARNING if quiet else logging.INFO),
        format="%(message)s",
        handlers=[handler],
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


def _job_config(
    verbose: bool,
    config: Path | None,
    overrides: list[str] | None,
    quiet: bool = False,
    **models: str | float | None,
) -> Config:
    """Logging plus the effective config of a job that calls models; stops at once with
    the how-to when no usable model is configured, before anything slow starts."""
    from codemonkeys.llm import ModelError, check_models, check_prices

    _setup_logging(verbose, quiet)
    cfg = build_config(config, overrides, **models)
    try:
        check_models(cfg.models)
        check_prices(cfg)
    except ModelError as e:
        raise _fail(str(e)) from e
    return cfg


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
    """Remove sandbox containers and temporary directories left behind by a crashed or
    killed run (only those whose owner process is gone)."""
    from codemonkeys.sandbox import clean_containers
    from codemonkeys.tempdirs import clean_temp_dirs

    dirs = clean_temp_dirs()
    console.print(
        f"removed {len(dirs)} leftover temporary director{'y' if len(dirs) == 1 else 'ies'}"
    )
    try:
        n = clean_containers(run_id=run_id)
    except Exception as e:
        raise _fail(f"cannot reach the Docker engine: {e}") from e
    console.print(f"removed {n} container(s)")


# -- solve ---------------------------------------------------------------------------------
@app.command()
def solve(
    repo: Annotated[
        Path,
        typer.Option("--repo", "-r", help="The git checkout (or a project directory inside one)."),
    ] = Path("."),
    issue: Annotated[str | None, typer.Option("--issue", "-i", help="The issue text.")] = None,
    issue_file: Annotated[
        Path | None, typer.Option("--issue-file", "-f", help="A file holding the issue text.")
    ] = None,
    github_issue: Annotated[
        str | None,
        typer.Option("--github-issue", help="A GitHub issue URL (GITHUB_TOKEN used when set)."),
    ] = None,
    github_api: Annotated[
        str, typer.Option("--github-api", hidden=True)
    ] = "https://api.github.com",
    image: Annotated[
        str | None,
        typer.Option("--image", help="Your own image to run tests in (repo copied to /repo)."),
    ] = None,
    dockerfile: Annotated[
        Path | None,
        typer.Option("--dockerfile", help="Build the test environment from this Dockerfile."),
    ] = None,
    sandbox: Annotated[
        str,
        typer.Option("--sandbox", help="docker (default) or local (host processes, no isolation)."),
    ] = "docker",
    include_uncommitted: Annotated[
        bool,
        typer.Option("--include-uncommitted", help="Solve against your uncommitted changes too."),
    ] = False,
    apply: Annotated[
        bool,
        typer.Option(
            "--apply", help="Commit the chosen patch on a new branch (working tree untouched)."
        ),
    ] = False,
    branch: Annotated[
        str | None, typer.Option("--branch", help="Name of the branch --apply creates.")
    ] = None,
    run_dir: Annotated[
        Path | None,
        typer.Option("--run-dir", help="Where records go (default runs/solve-...; rerun resumes)."),
    ] = None,
    estimate_only: Annotated[
        bool, typer.Option("--estimate", help="Print the cost estimate and stop.")
    ] = False,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    model: ModelOpt = None,
    relevance_model: RelevanceModelOpt = None,
    base_url: BaseUrlOpt = None,
    max_cost: MaxCostOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Solve one issue in a local repository: the chosen patch, its votes, cost and time."""
    from codemonkeys.llm import ModelError
    from codemonkeys.solve import SolveError, SolveOptions
    from codemonkeys.solve import solve as run_solve

    cfg = _job_config(
        verbose,
        config,
        set_,
        model=model,
        relevance_model=relevance_model,
        base_url=base_url,
        max_cost=max_cost,
    )
    if sandbox not in ("docker", "local"):
        raise _fail("--sandbox is docker or local")
    if sum(x is not None for x in (issue, issue_file, github_issue)) != 1:
        raise _fail("give the issue once: --issue TEXT, --issue-file FILE or --github-issue URL")
    try:
        if issue_file is not None:
            text = issue_file.read_text(encoding="utf-8", errors="replace")
        elif github_issue is not None:
            from codemonkeys.github import fetch_issue

            text = fetch_issue(github_issue, api_base=github_api).text
        else:
            text = issue or ""
        opts = SolveOptions(
            repo=repo,
            issue=text,
            include_uncommitted=include_uncommitted,
            image=image,
            dockerfile=dockerfile,
            sandbox=sandbox,
            apply=apply,
            branch=branch,
            run_dir=run_dir,
            estimate_only=estimate_only,
        )
        with JobSignals(console) as signals:
            outcome = run_solve(opts, cfg, console, stop=signals.stop)
    except (ModelError, SolveError, RunLocked, OSError) as e:
        raise _fail(str(e)) from e
    except Exception as e:
        from codemonkeys.github import GitHubError
        from codemonkeys.localrepo import LocalRepoError

        if isinstance(e, GitHubError | LocalRepoError):
            raise _fail(str(e)) from e
        raise
    if signals.received is not None:
        raise typer.Exit(signals.exit_code)
    if outcome.result is not None and outcome.result.status not in ("done",):
        raise typer.Exit(1)


# -- swebench --------------------------------------------------------------------------------
@swebench_app.command("run")
def swebench_run(
    dataset: Annotated[
        str,
        typer.Option(
            "--dataset", "-d", help="verified | lite | full | a .json/.jsonl/.parquet file."
        ),
    ] = "verified",
    split: Annotated[str, typer.Option(help="Dataset split (hub datasets).")] = "test",
    ids_file: Annotated[
        Path | None, typer.Option("--ids-file", help="File with one instance id per line.")
    ] = None,
    instance: Annotated[
        list[str] | None, typer.Option("--instance", help="An instance id (repeatable).")
    ] = None,
    regex: Annotated[
        str | None, typer.Option("--regex", help="Keep instance ids matching this regex.")
    ] = None,
    slice_: Annotated[
        str | None, typer.Option("--slice", help="Python-style slice, e.g. 0:20.")
    ] = None,
    shuffle: Annotated[
        int | None, typer.Option("--shuffle", help="Shuffle with this seed before slicing.")
    ] = None,
    run_dir: Annotated[
        Path | None,
        typer.Option("--run-dir", help="Run directory (rerun the same command to resume)."),
    ] = None,
    name: Annotated[
        str | None,
        typer.Option("--name", help="Run name under runs/ (default: swebench-<dataset>)."),
    ] = None,
    quiet: Annotated[
        bool,
        typer.Option("--quiet", "-q", help="One line per problem instead of the live display."),
    ] = False,
    remove_images: Annotated[
        bool,
        typer.Option(
            "--remove-images", help="Remove each instance image when its problem is done."
        ),
    ] = False,
    estimate_only: Annotated[
        bool,
        typer.Option(
            "--estimate",
            help="Print the relevance scan's tokens and price per problem and stop "
            "(trees from local instance images; nothing is spent).",
        ),
    ] = False,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    model: ModelOpt = None,
    relevance_model: RelevanceModelOpt = None,
    base_url: BaseUrlOpt = None,
    max_cost: MaxCostOpt = None,
    verbose: VerboseOpt = False,
    ray: RayOpt = None,
) -> None:
    """Run the pipeline over SWE-bench problems: resumable, capped, streaming."""
    from codemonkeys.distributed.cluster import RayUnavailable
    from codemonkeys.sandbox.base import SandboxError
    from codemonkeys.swebench.dataset import DatasetError
    from codemonkeys.swebench.run import SwebenchRunOptions, run_swebench

    cfg = _job_config(
        verbose,
        config,
        set_,
        quiet=quiet,
        model=model,
        relevance_model=relevance_model,
        base_url=base_url,
        max_cost=max_cost,
    )
    label = (
        name
        or f"swebench-{Path(dataset).stem if dataset.endswith(('.json', '.jsonl', '.parquet')) else dataset}"
    )
    opts = SwebenchRunOptions(
        dataset=dataset,
        split=split,
        ids_file=ids_file,
        ids=instance,
        regex=regex,
        slice=slice_,
        shuffle_seed=shuffle,
        run_dir=(run_dir or cfg.run.runs_dir / label).absolute(),
        quiet=quiet,
        remove_images=remove_images,
        ray=ray,
    )
    try:
        if estimate_only:
            from codemonkeys.swebench.estimate import estimate_swebench
            from codemonkeys.swebench.run import load_rows

            try:
                estimate_swebench(load_rows(opts), cfg, console)
            except ValueError as e:  # no problem could be estimated
                raise _fail(str(e)) from e
            return
        with JobSignals(console) as signals:
            summary = run_swebench(opts, cfg, console, stop=signals.stop)
    except (DatasetError, RunLocked, DiskFull, RayUnavailable) as e:
        raise _fail(str(e)) from e
    except SandboxError as e:  # e.g. the Docker engine is unreachable
        raise _fail(str(e), code=1) from e
    console.print(summary.describe(), highlight=False, soft_wrap=True)
    raise typer.Exit(signals.exit_code or summary.exit_code)


@swebench_app.command("evaluate")
def swebench_evaluate(
    run_dir: Annotated[
        Path, typer.Argument(help="A run directory made by `swebench run` or `ensemble`.")
    ],
    candidates: Annotated[
        bool,
        typer.Option(
            "--candidates/--chosen-only", help="Also grade every distinct candidate (coverage)."
        ),
    ] = True,
    intermediate: Annotated[
        bool,
        typer.Option(
            "--intermediate",
            help="Also grade every intermediate edit (serial-scaling curve; many more runs).",
        ),
    ] = False,
    workers: Annotated[int, typer.Option("--workers", help="Harness workers.")] = 2,
    verbose: VerboseOpt = False,
    ray: RayOpt = None,
) -> None:
    """Grade a run's chosen patches and distinct final candidates with the official
    swebench harness."""
    from codemonkeys.swebench.run import evaluate_run

    _setup_logging(verbose)
    if not run_dir.is_dir():
        raise _fail(f"no run directory at {run_dir}")
    try:
        summary = evaluate_run(
            run_dir,
            candidates=candidates,
            intermediate=intermediate,
            max_workers=workers,
            console=console,
            ray=ray,
        )
    except (FileNotFoundError, RuntimeError, ValueError) as e:
        raise _fail(str(e)) from e
    typer.echo(json.dumps(summary))
    if summary["ungraded"]:
        console.print(
            f"{summary['ungraded']} problem(s) ungraded (see their evaluation.json 'reason'): "
            f"they are not in the resolve rate; rerun `codemonkeys swebench evaluate {run_dir}` "
            "to grade them",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(1)


# -- ensemble ----------------------------------------------------------------------------------
@app.command()
def ensemble(
    predictions: Annotated[
        list[Path],
        typer.Argument(help="Predictions files of other systems (JSONL, JSON dict, preds.json)."),
    ],
    dataset: Annotated[
        str,
        typer.Option(
            "--dataset", "-d", help="Dataset the predictions are for (hub alias or file)."
        ),
    ] = "verified",
    own_run: Annotated[
        Path | None,
        typer.Option("--run", help="Also include this codemonkeys run's candidates and tests."),
    ] = None,
    instance: Annotated[
        list[str] | None, typer.Option("--instance", help="Only these instance ids.")
    ] = None,
    slice_: Annotated[
        str | None, typer.Option("--slice", help="Python-style slice of the instances.")
    ] = None,
    run_dir: Annotated[
        Path | None, typer.Option("--run-dir", help="Run directory (default runs/ensemble).")
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Predictions file to write (.jsonl or .json)."),
    ] = None,
    quiet: Annotated[
        bool,
        typer.Option("--quiet", "-q", help="One line per problem instead of the live display."),
    ] = False,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    model: ModelOpt = None,
    base_url: BaseUrlOpt = None,
    max_cost: MaxCostOpt = None,
    verbose: VerboseOpt = False,
    ray: RayOpt = None,
) -> None:
    """Select among other systems' patches with model-written tests (no labels needed)."""
    from codemonkeys.distributed.cluster import RayUnavailable
    from codemonkeys.ensemble_run import EnsembleOptions, run_ensemble
    from codemonkeys.llm import ModelError
    from codemonkeys.sandbox.base import SandboxError

    cfg = _job_config(
        verbose, config, set_, quiet=quiet, model=model, base_url=base_url, max_cost=max_cost
    )
    opts = EnsembleOptions(
        predictions=predictions,
        dataset=dataset,
        own_run=own_run,
        ids=instance,
        slice=slice_,
        run_dir=(run_dir or cfg.run.runs_dir / "ensemble").absolute(),
        out=out,
        quiet=quiet,
        ray=ray,
    )
    try:
        with JobSignals(console) as signals:
            path, summary = run_ensemble(opts, cfg, console, stop=signals.stop)
    except (ModelError, RunLocked, DiskFull, ValueError, FileNotFoundError, RayUnavailable) as e:
        raise _fail(str(e)) from e
    except SandboxError as e:  # e.g. the Docker engine is unreachable
        raise _fail(str(e), code=1) from e
    console.print(f"predictions: {path}")
    console.print(summary.describe(), highlight=False, soft_wrap=True)
    raise typer.Exit(signals.exit_code or summary.exit_code)


# -- report / show -----------------------------------------------------------------------------
@app.command()
def report(
    run_dir: Annotated[Path, typer.Argument(help="A run directory.")],
    html: Annotated[
        Path | None,
        typer.Option("--html", help="Write the HTML report here (default <run>/report.html)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Resolve rate, coverage, selection accuracy, context recall, cost and time per stage."""
    from codemonkeys.report import render_terminal, write_report

    if not run_dir.is_dir():
        raise _fail(f"{run_dir} is not a run directory")
    rep, path = write_report(run_dir, html)
    if as_json:
        typer.echo(rep.model_dump_json(indent=2))  # stdout holds the JSON alone
    else:
        render_terminal(rep, console)
    console.print(f"HTML report: {path}", highlight=False, soft_wrap=True)  # stderr


@app.command()
def show(
    run_dir: Annotated[Path, typer.Argument(help="A run directory.")],
    problem: Annotated[str, typer.Argument(help="Problem (instance) id.")],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="HTML file to write.")] = None,
) -> None:
    """Render one problem's trajectories, tests, diffs and votes as HTML."""
    from codemonkeys.show import write_show

    try:
        path = write_show(run_dir, problem, out)
    except (FileNotFoundError, KeyError, ValueError) as e:
        raise _fail(str(e)) from e
    console.print(f"wrote {path}")


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
