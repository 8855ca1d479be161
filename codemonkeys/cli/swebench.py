"""``codemonkeys swebench run`` and ``swebench evaluate`` (the jobs are in
``codemonkeys.swebench.run``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from codemonkeys.cli.common import (
    ConfigInputs,
    console,
    job_config,
    job_entry,
    setup_logging,
    user_errors_from,
)
from codemonkeys.cli.options import (
    BaseUrlOpt,
    ConfigOpt,
    InstanceOpt,
    MaxCostOpt,
    ModelOpt,
    QuietOpt,
    RayOpt,
    RelevanceModelOpt,
    SetOpt,
    SliceOpt,
    VerboseOpt,
)
from codemonkeys.config import Config
from codemonkeys.errors import UsageError

if TYPE_CHECKING:
    from codemonkeys.swebench.run import SwebenchRunOptions

swebench_app = typer.Typer(no_args_is_help=True, help="SWE-bench runs: run and evaluate.")

DatasetOpt = Annotated[
    str,
    typer.Option("--dataset", "-d", help="verified | lite | full | a .json/.jsonl/.parquet file."),
]
SplitOpt = Annotated[str, typer.Option(help="Dataset split (hub datasets).")]
IdsFileOpt = Annotated[
    Path | None, typer.Option("--ids-file", help="File with one instance id per line.")
]
RegexOpt = Annotated[
    str | None, typer.Option("--regex", help="Keep instance ids matching this regex.")
]
ShuffleOpt = Annotated[
    int | None, typer.Option("--shuffle", help="Shuffle with this seed before slicing.")
]
RunDirOpt = Annotated[
    Path | None, typer.Option("--run-dir", help="Run directory (rerun the same command to resume).")
]
NameOpt = Annotated[
    str | None,
    typer.Option("--name", help="Run name under runs/ (default: swebench-<dataset>)."),
]
RemoveImagesOpt = Annotated[
    bool,
    typer.Option("--remove-images", help="Remove each instance image when its problem is done."),
]
EstimateOpt = Annotated[
    bool,
    typer.Option(
        "--estimate",
        help="Print the relevance scan's tokens and price per problem and stop "
        "(trees from local instance images; nothing is spent).",
    ),
]


def run_label(dataset: str, name: str | None) -> str:
    """The run's name under runs/: ``--name``, else ``swebench-<dataset alias or file stem>``."""
    if name:
        return name
    is_file = dataset.endswith((".json", ".jsonl", ".parquet"))
    return f"swebench-{Path(dataset).stem if is_file else dataset}"


def _estimate(opts: SwebenchRunOptions, cfg: Config) -> None:
    # command body: loads only when the command runs
    from codemonkeys.cli.display import ConsoleObserver

    # command body: loads only when the command runs
    from codemonkeys.swebench.estimate import estimate_swebench
    from codemonkeys.swebench.run import load_rows  # command body: loads only when the command runs

    with user_errors_from(ValueError):
        estimate_swebench(
            load_rows(opts), cfg, ConsoleObserver(console)
        )  # ValueError: none could be


@swebench_app.command("run")
def swebench_run(
    dataset: DatasetOpt = "verified",
    split: SplitOpt = "test",
    ids_file: IdsFileOpt = None,
    instance: InstanceOpt = None,
    regex: RegexOpt = None,
    slice_: SliceOpt = None,
    shuffle: ShuffleOpt = None,
    run_dir: RunDirOpt = None,
    name: NameOpt = None,
    quiet: QuietOpt = False,
    remove_images: RemoveImagesOpt = False,
    estimate_only: EstimateOpt = False,
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
    # command body: loads only when the command runs
    from codemonkeys.cli.display import ProgressObserver

    # command body: loads only when the command runs
    from codemonkeys.swebench.run import SwebenchRunOptions, run_swebench

    inputs = ConfigInputs(
        path=config,
        overrides=set_ or [],
        model=model,
        relevance_model=relevance_model,
        base_url=base_url,
        max_cost=max_cost,
    )
    cfg = job_config(inputs, verbose=verbose, quiet=quiet)
    opts = SwebenchRunOptions(
        dataset=dataset,
        split=split,
        ids_file=ids_file,
        ids=instance,
        regex=regex,
        slice=slice_,
        shuffle_seed=shuffle,
        run_dir=(run_dir or cfg.run.runs_dir / run_label(dataset, name)).absolute(),
        quiet=quiet,
        remove_images=remove_images,
        ray=ray,
    )
    if estimate_only:
        _estimate(opts, cfg)
        return
    with job_entry() as signals:
        summary = run_swebench(opts, cfg, ProgressObserver(console, quiet=quiet), stop=signals.stop)
    console.print(summary.describe(), highlight=False, soft_wrap=True)
    raise typer.Exit(signals.exit_code or summary.exit_code)


CandidatesOpt = Annotated[
    bool,
    typer.Option(
        "--candidates/--chosen-only", help="Also grade every distinct candidate (coverage)."
    ),
]
IntermediateOpt = Annotated[
    bool,
    typer.Option(
        "--intermediate",
        help="Also grade every intermediate edit (serial-scaling curve; many more runs).",
    ),
]
WorkersOpt = Annotated[int, typer.Option("--workers", help="Harness workers.")]


@swebench_app.command("evaluate")
def swebench_evaluate(
    run_dir: Annotated[
        Path, typer.Argument(help="A run directory made by `swebench run` or `ensemble`.")
    ],
    candidates: CandidatesOpt = True,
    intermediate: IntermediateOpt = False,
    workers: WorkersOpt = 2,
    verbose: VerboseOpt = False,
    ray: RayOpt = None,
) -> None:
    """Grade a run's chosen patches and distinct final candidates with the official
    swebench harness."""
    # command body: loads only when the command runs
    from codemonkeys.swebench.run import evaluate_run

    setup_logging(verbose)
    if not run_dir.is_dir():
        raise UsageError(f"no run directory at {run_dir}")
    with user_errors_from(FileNotFoundError, RuntimeError, ValueError):
        summary = evaluate_run(
            run_dir,
            candidates=candidates,
            intermediate=intermediate,
            max_workers=workers,
            ray=ray,
        )
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
