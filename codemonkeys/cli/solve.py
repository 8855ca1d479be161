"""``codemonkeys solve``: one issue in a local repository (the job is ``codemonkeys.solve``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from codemonkeys.cli.common import (
    ConfigInputs,
    console,
    job_config,
    job_entry,
    user_errors_from,
)
from codemonkeys.cli.options import (
    BaseUrlOpt,
    ConfigOpt,
    MaxCostOpt,
    ModelOpt,
    RelevanceModelOpt,
    SetOpt,
    VerboseOpt,
)
from codemonkeys.config import SandboxKindName
from codemonkeys.errors import UsageError

RepoOpt = Annotated[
    Path, typer.Option("--repo", "-r", help="The git checkout (or a project directory inside one).")
]
IssueOpt = Annotated[str | None, typer.Option("--issue", "-i", help="The issue text.")]
IssueFileOpt = Annotated[
    Path | None, typer.Option("--issue-file", "-f", help="A file holding the issue text.")
]
GithubIssueOpt = Annotated[
    str | None,
    typer.Option("--github-issue", help="A GitHub issue URL (GITHUB_TOKEN used when set)."),
]
GithubApiOpt = Annotated[str, typer.Option("--github-api", hidden=True)]
ImageOpt = Annotated[
    str | None,
    typer.Option("--image", help="Your own image to run tests in (repo copied to /repo)."),
]
DockerfileOpt = Annotated[
    Path | None,
    typer.Option("--dockerfile", help="Build the test environment from this Dockerfile."),
]
SandboxOpt = Annotated[
    str, typer.Option("--sandbox", help="docker (default) or local (host processes, no isolation).")
]
UncommittedOpt = Annotated[
    bool, typer.Option("--include-uncommitted", help="Solve against your uncommitted changes too.")
]
ApplyOpt = Annotated[
    bool,
    typer.Option(
        "--apply", help="Commit the chosen patch on a new branch (working tree untouched)."
    ),
]
BranchOpt = Annotated[
    str | None, typer.Option("--branch", help="Name of the branch --apply creates.")
]
RunDirOpt = Annotated[
    Path | None,
    typer.Option("--run-dir", help="Where records go (default runs/solve-...; rerun resumes)."),
]
EstimateOpt = Annotated[bool, typer.Option("--estimate", help="Print the cost estimate and stop.")]


def issue_text(
    issue: str | None, issue_file: Path | None, github_issue: str | None, github_api: str
) -> str:
    """The issue given exactly once: as text, a file, or a GitHub issue URL."""
    if sum(x is not None for x in (issue, issue_file, github_issue)) != 1:
        raise UsageError(
            "give the issue once: --issue TEXT, --issue-file FILE or --github-issue URL"
        )
    if issue_file is not None:
        with user_errors_from(OSError):
            return issue_file.read_text(encoding="utf-8", errors="replace")
    if github_issue is not None:
        from codemonkeys.github import fetch_issue  # command body: loads only when the command runs

        return fetch_issue(github_issue, api_base=github_api).text
    return issue or ""


def sandbox_kind(value: str) -> SandboxKindName:
    from codemonkeys.sandbox.kinds import KINDS  # command body: the sandbox package loads on use

    for kind in KINDS:
        if value == kind:
            return kind
    raise UsageError(f"--sandbox is {' or '.join(KINDS)}")


def solve(
    repo: RepoOpt = Path("."),
    issue: IssueOpt = None,
    issue_file: IssueFileOpt = None,
    github_issue: GithubIssueOpt = None,
    github_api: GithubApiOpt = "https://api.github.com",
    image: ImageOpt = None,
    dockerfile: DockerfileOpt = None,
    sandbox: SandboxOpt = "docker",
    include_uncommitted: UncommittedOpt = False,
    apply: ApplyOpt = False,
    branch: BranchOpt = None,
    run_dir: RunDirOpt = None,
    estimate_only: EstimateOpt = False,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    model: ModelOpt = None,
    relevance_model: RelevanceModelOpt = None,
    base_url: BaseUrlOpt = None,
    max_cost: MaxCostOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Solve one issue in a local repository: the chosen patch, its votes, cost and time."""
    # command body: loads only when the command runs
    from codemonkeys.cli.display import ConsoleObserver
    from codemonkeys.solve import SolveOptions  # command body: loads only when the command runs

    # command body: loads only when the command runs
    from codemonkeys.solve import solve as run_solve

    inputs = ConfigInputs(
        path=config,
        overrides=set_ or [],
        model=model,
        relevance_model=relevance_model,
        base_url=base_url,
        max_cost=max_cost,
    )
    cfg = job_config(inputs, verbose=verbose)
    kind = sandbox_kind(sandbox)
    text = issue_text(issue, issue_file, github_issue, github_api)
    opts = SolveOptions(
        repo=repo,
        issue=text,
        include_uncommitted=include_uncommitted,
        image=image,
        dockerfile=dockerfile,
        sandbox=kind,
        apply=apply,
        branch=branch,
        run_dir=run_dir,
        estimate_only=estimate_only,
    )
    with job_entry() as signals, user_errors_from(OSError):
        outcome = run_solve(opts, cfg, ConsoleObserver(console), stop=signals.stop)
    if signals.received is not None:
        raise typer.Exit(signals.exit_code)
    if outcome.result is not None and outcome.result.status != "done":
        raise typer.Exit(1)
