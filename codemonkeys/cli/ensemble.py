"""``codemonkeys ensemble``: select among other systems' patches (the job is
``codemonkeys.ensemble_run``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from codemonkeys.cli.common import ConfigInputs, console, job_config, job_entry, user_errors_from
from codemonkeys.cli.options import (
    BaseUrlOpt,
    ConfigOpt,
    InstanceOpt,
    MaxCostOpt,
    ModelOpt,
    QuietOpt,
    RayOpt,
    SetOpt,
    SliceOpt,
    VerboseOpt,
)

PredictionsArg = Annotated[
    list[Path],
    typer.Argument(help="Predictions files of other systems (JSONL, JSON dict, preds.json)."),
]
DatasetOpt = Annotated[
    str,
    typer.Option("--dataset", "-d", help="Dataset the predictions are for (hub alias or file)."),
]
OwnRunOpt = Annotated[
    Path | None,
    typer.Option("--run", help="Also include this codemonkeys run's candidates and tests."),
]
RunDirOpt = Annotated[
    Path | None, typer.Option("--run-dir", help="Run directory (default runs/ensemble).")
]
OutOpt = Annotated[
    Path | None,
    typer.Option("--out", "-o", help="Predictions file to write (.jsonl or .json)."),
]


def ensemble(
    predictions: PredictionsArg,
    dataset: DatasetOpt = "verified",
    own_run: OwnRunOpt = None,
    instance: InstanceOpt = None,
    slice_: SliceOpt = None,
    run_dir: RunDirOpt = None,
    out: OutOpt = None,
    quiet: QuietOpt = False,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    model: ModelOpt = None,
    base_url: BaseUrlOpt = None,
    max_cost: MaxCostOpt = None,
    verbose: VerboseOpt = False,
    ray: RayOpt = None,
) -> None:
    """Select among other systems' patches with model-written tests (no labels needed)."""
    # command body: loads only when the command runs
    from codemonkeys.cli.display import ProgressObserver

    # command body: loads only when the command runs
    from codemonkeys.ensemble_run import EnsembleOptions, run_ensemble

    inputs = ConfigInputs(
        path=config, overrides=set_ or [], model=model, base_url=base_url, max_cost=max_cost
    )
    cfg = job_config(inputs, verbose=verbose, quiet=quiet)
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
    with job_entry() as signals, user_errors_from(ValueError, FileNotFoundError):
        path, summary = run_ensemble(
            opts, cfg, ProgressObserver(console, quiet=opts.quiet), stop=signals.stop
        )
    console.print(f"predictions: {path}")
    console.print(summary.describe(), highlight=False, soft_wrap=True)
    raise typer.Exit(signals.exit_code or summary.exit_code)
