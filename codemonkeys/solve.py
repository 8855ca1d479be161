"""``codemonkeys solve``: one issue, one local repository.

1. check a model is configured (before anything slow), open the git checkout and pick the
   base commit (uncommitted work is refused unless the user includes it; never lost);
2. print an estimate (files, tokens, calls, USD range) before building or spending;
3. the environment to run tests in: the user's image, the user's Dockerfile, or an image
   built automatically for the detected project kind (cached), or host processes;
4. the three stages (pipeline.solve_problem), capped by --max-cost;
5. the chosen patch printed and saved, the candidates with votes, the reason, cost and
   time; ``--apply`` commits it on a new branch without touching the working tree.
"""

from __future__ import annotations

import hashlib
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel

from codemonkeys.config import Config, SandboxKindName
from codemonkeys.context.files import enumerate_files
from codemonkeys.context.prefilter import apply_prefilter
from codemonkeys.context.scan_cost import ScanEstimate, estimate_scan
from codemonkeys.errors import CodemonkeysError
from codemonkeys.llm import check_models, check_prices
from codemonkeys.llm.pricing import Pricing
from codemonkeys.llm.tokens import count_tokens
from codemonkeys.pipeline import Observer, open_run, solve_problem, write_status
from codemonkeys.problem import Problem, safe_name
from codemonkeys.run_records import ProblemResult
from codemonkeys.sandbox import ensure_image
from codemonkeys.sandbox.environment import (
    EnvironmentBuildError,
    build_environment_image,
    build_from_dockerfile,
    default_test_language,
    detect_environment,
    ensure_sandbox_image,
)
from codemonkeys.sandbox.kinds import engine_client, sandbox_kind
from codemonkeys.store import atomic_write_text, disk_full_error
from codemonkeys.tempdirs import temp_dir

if TYPE_CHECKING:
    from codemonkeys.localrepo import LocalRepo


class SolveError(CodemonkeysError, RuntimeError):
    """A user-facing reason the solve could not start."""


class SolveOptions(BaseModel):
    repo: Path
    issue: str
    include_uncommitted: bool = False
    image: str | None = None
    dockerfile: Path | None = None
    sandbox: SandboxKindName = "docker"
    apply: bool = False
    branch: str | None = None
    run_dir: Path | None = None
    estimate_only: bool = False


class Estimate(BaseModel):
    files: int
    file_tokens: int
    calls_low: int
    calls_high: int
    usd_low: float
    usd_high: float
    unpriced: list[str] = []
    """Models without a known price: their calls are counted as $0 in the range."""

    def describe(self) -> str:
        text = (
            f"estimate: {self.files} files to scan ({self.file_tokens:,} tokens), "
            f"{self.calls_low:,}-{self.calls_high:,} model calls, "
            f"${self.usd_low:.2f}-${self.usd_high:.2f}"
        )
        if self.unpriced:
            text += (
                f" (no price known for {', '.join(self.unpriced)}: its calls are counted as "
                "$0 here and against any cost cap)"
            )
        return text


class SolveObserver(Observer):
    """What ``solve`` tells its user: the pipeline's progress, lines of text, the result."""

    def solved(self, result: ProblemResult, cost: float, seconds: float) -> None:
        """The problem's result, the run's spend and this invocation's seconds."""


class SolveOutcome(BaseModel):
    run_dir: Path
    result: ProblemResult | None = None
    estimate: Estimate | None = None
    scan: ScanEstimate | None = None
    patch_file: Path | None = None
    branch: str | None = None
    commit: str | None = None


def estimate_cost(config: Config, n_files: int, file_tokens: int, issue_tokens: int) -> Estimate:
    """A rough range from the paper's call structure: one relevance call per file, the
    rankings, 2-8 test and 2-8 edit calls per trajectory (the edit prefix cached), and
    2-10 selection calls."""
    pricing = Pricing(config.models)
    rel_model = config.models.relevance_endpoint().model
    primary = config.models.primary.model
    g, c = config.generation, config.context
    context_tokens = min(c.token_budget, max(file_tokens // 10, 2000))
    rel_in = file_tokens + n_files * (issue_tokens + 400)
    rel_out = n_files * 120

    def cost(model: str, inp: int, out: int, cached: int = 0) -> float:
        p = pricing.price(model)
        if p is None:
            return 0.0
        read = p.cache_read if p.cache_read is not None else p.input
        return (inp * p.input + out * p.output + cached * read) / 1e6

    def generation(calls_each: int) -> tuple[int, float]:
        calls = g.samples * 2 * calls_each
        test_in = g.samples * calls_each * (issue_tokens + 1500) * (calls_each + 1) // 2
        edit_cached = g.samples * calls_each * context_tokens
        edit_in = g.samples * calls_each * (issue_tokens + 3000) * (calls_each + 1) // 2
        out = calls * 1500
        return calls, cost(primary, test_in + edit_in, out, edit_cached)

    low_calls, low_usd = generation(2)
    high_calls, high_usd = generation(max(g.test_attempts, g.edit_attempts))
    ranking = cost(primary, c.rankings * (n_files * 80 + issue_tokens), c.rankings * 1500)
    selection_low = cost(primary, 2 * (context_tokens // 4 + 5000), 2 * 2000)
    selection_high = cost(
        primary, config.selection.attempts * (context_tokens // 4 + 8000), 10 * 2000
    )
    relevance = cost(rel_model, rel_in, rel_out)
    base_calls = n_files + c.rankings
    unpriced = sorted({m for m in (rel_model, primary) if not pricing.is_priced(m)})
    return Estimate(
        unpriced=unpriced,
        files=n_files,
        file_tokens=file_tokens,
        calls_low=base_calls + low_calls + 1,
        calls_high=base_calls + high_calls + config.selection.attempts,
        usd_low=round(relevance + ranking + low_usd + selection_low, 2),
        usd_high=round(relevance + ranking + high_usd + selection_high, 2),
    )


def prepare_environment(
    opts: SolveOptions, config: Config, tree: Path, observer: SolveObserver
) -> tuple[str | None, Literal["python", "shell"]]:
    """The image to run tests in, and the test-script language for the project."""
    plan = detect_environment(tree)
    language = default_test_language(plan.kind)
    if not sandbox_kind(opts.sandbox).isolated:
        observer.message(
            "--sandbox local runs model-written code as host processes, "
            "without isolation or network limits.",
            warning=True,
        )
        observer.message(plan.describe())
        return None, language

    client = engine_client(opts.sandbox)  # EngineUnreachable: the one message and fix
    if opts.image:
        ensure_image(opts.image, client)
        observer.message(f"environment: your image {opts.image}")
        return opts.image, language
    try:
        if opts.dockerfile:
            t0 = time.monotonic()
            tag = build_from_dockerfile(opts.dockerfile, client)
            observer.message(
                f"environment: {opts.dockerfile} built as {tag} in {time.monotonic() - t0:.0f}s"
            )
            return tag, language
        ensure_sandbox_image(config.sandbox.image, client, observer.message)
        observer.message(plan.describe())
        built = build_environment_image(tree, plan, base_image=config.sandbox.image, client=client)
        observer.message(built.describe(plan))
        return built.tag, language
    except EnvironmentBuildError as e:
        raise SolveError(str(e)) from None


def default_run_dir(config: Config, label: str, base_commit: str, issue: str) -> Path:
    digest = hashlib.sha256(issue.encode()).hexdigest()[:8]
    return config.run.runs_dir / f"solve-{safe_name(label)}-{base_commit[:8]}-{digest}"


def problem_id(label: str, base_commit: str, issue: str) -> str:
    """The repository label plus a digest of the issue text and the base commit: another
    issue, or the same issue on other code, is another problem even in the same run
    directory (its records are never answered from the first one's)."""
    digest = hashlib.sha256(f"{base_commit}\0{issue}".encode()).hexdigest()[:10]
    return f"{safe_name(label)}-{digest}"


def solve(
    opts: SolveOptions,
    config: Config,
    observer: SolveObserver,
    *,
    stop: threading.Event | None = None,
) -> SolveOutcome:
    """Solve ``opts.issue`` in ``opts.repo`` (the stages render the prompt templates of
    ``config``, ``prompts.dir`` overrides included). ``config`` is not changed (the job works on a copy with ``sandbox.kind`` from
    ``opts``). ``stop``: the job's stop flag (set by interrupts.JobSignals at the CLI
    entry)."""
    return _solve(opts, config, observer, stop)


def _solve(
    opts: SolveOptions, config: Config, observer: SolveObserver, stop: threading.Event | None
) -> SolveOutcome:
    from codemonkeys.localrepo import export_tree, open_repo  # deferred: loads git only when used

    # 1. fail fast: a model, a checkout, a base commit
    check_models(config.models)
    check_prices(config)
    if not opts.issue.strip():
        raise SolveError(
            "the issue text is empty",
            fix="pass the issue with --issue, --issue-file or --github-issue",
        )
    config = config.model_copy(deep=True)
    config.sandbox.kind = opts.sandbox
    repo = open_repo(opts.repo)
    base = repo.base_commit(include_uncommitted=opts.include_uncommitted)
    run_dir = (opts.run_dir or default_run_dir(config, repo.label, base, opts.issue)).absolute()
    with temp_dir("tree") as tree:
        paths = export_tree(repo, base, tree)
        # 2. the estimate, before anything is built or spent
        outcome = SolveOutcome(run_dir=run_dir)
        outcome.estimate, outcome.scan = print_estimates(opts.issue, tree, paths, config, observer)
        if opts.estimate_only or (stop is not None and stop.is_set()):
            return outcome
        # 3. the environment to run tests in
        image, language = prepare_environment(opts, config, tree, observer)
    if stop is not None and stop.is_set():  # stopped while the environment was built
        return outcome
    problem = Problem(
        id=problem_id(repo.label, base, opts.issue),
        repo=repo.label,
        issue=opts.issue,
        base_commit=base,
        image=image,
        repo_path=repo.root,
        subdir=repo.subdir or None,
        workdir="/repo",
        test_language=language,
    )
    # 4. the stages; 5. the result, saved and (--apply) committed on a new branch
    outcome.result = run_problem(problem, run_dir, config, observer, stop)
    if outcome.result.chosen_patch:
        save_patch(outcome, opts, repo, base, observer)
    return outcome


def print_estimates(
    issue: str, tree: Path, paths: list[str], config: Config, observer: SolveObserver
) -> tuple[Estimate, ScanEstimate]:
    """The whole run's cost range and the relevance scan's price, printed with the cap."""
    enum = enumerate_files(tree, paths, config.context)
    scanned = (
        apply_prefilter(issue, tree, enum, config.context) if config.context.prefilter else enum
    )
    estimate = estimate_cost(config, len(scanned.files), scanned.total_tokens, count_tokens(issue))
    observer.message(estimate.describe())
    scan = estimate_scan(config, enum, issue, tree)
    observer.message(scan.describe())
    cap = config.run.max_cost_usd
    observer.message(
        f"cost cap: ${cap:.2f}" if cap is not None else "cost cap: none (--max-cost to set one)"
    )
    return estimate, scan


def run_problem(
    problem: Problem,
    run_dir: Path,
    config: Config,
    observer: SolveObserver,
    stop: threading.Event | None,
) -> ProblemResult:
    """The three stages on the problem, in ``run_dir`` (resumed when it exists)."""
    rt = open_run(run_dir, config, observer=observer, stop=stop)
    try:
        observer.message(f"run directory: {run_dir}")
        t0 = time.monotonic()
        result = solve_problem(rt, problem)
        if rt.store.disk_full.is_set():
            raise disk_full_error(rt.store.root)
        write_status(rt, [result])
        observer.solved(result, rt.costs.total, time.monotonic() - t0)
        return result
    finally:
        rt.close()


def save_patch(
    outcome: SolveOutcome, opts: SolveOptions, repo: LocalRepo, base: str, observer: SolveObserver
) -> None:
    """``chosen.patch`` in the run directory; with ``--apply``, a commit on a new branch
    (the working tree is not touched)."""
    result = outcome.result
    assert result is not None and result.chosen_patch
    outcome.patch_file = outcome.run_dir / "chosen.patch"
    atomic_write_text(outcome.patch_file, result.chosen_patch)
    observer.message(f"patch saved to {outcome.patch_file}")
    if not opts.apply:
        return
    outcome.branch, outcome.commit = repo.apply_on_branch(
        result.chosen_patch,
        base_commit=base,
        branch_name=opts.branch,
        message=f"Fix: {first_line(opts.issue)}\n\nProposed by codemonkeys ({outcome.run_dir.name}).",
    )
    observer.message(
        f"applied on new branch {outcome.branch} ({outcome.commit[:12]}); "
        "your working tree is untouched"
    )


def first_line(text: str, limit: int = 60) -> str:
    line = next((x.strip("# ").strip() for x in text.splitlines() if x.strip()), "issue")
    return line[:limit]
