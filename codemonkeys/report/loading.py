"""Loading a run directory into a ``Report``, through the records the pipeline writes.

``build_report(run_dir)`` reads whatever records a run has (a run that was killed, a
problem that failed) and never raises on a missing or partial record: what cannot be
measured is ``None`` and the reason lands in ``Report.warnings``. Records are named by the
registry (``codemonkeys.records.Record``); trajectories are read as ``TrajectoryRecord``
(``codemonkeys.run_patches``); the result, selection and evaluation records are read as
their writers write them (``ProblemResult``, ``SelectionRecord``,
``swebench.run.evaluation_record``).

Denominators (stated once, used everywhere): a problem is *evaluated* when the harness
graded its chosen patch (``evaluation.json`` with a verdict) or when it has no chosen patch
at all (then it is trivially unresolved). A problem the harness never graded (its image was
missing, the harness failed: verdict ``ungraded``) is neither resolved nor unresolved: it is
left out of every denominator and counted separately (``Summary.ungraded``, a warning).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from codemonkeys.analysis.runview import analyse_run
from codemonkeys.candidates import candidate_id
from codemonkeys.context.records import ContextRecord
from codemonkeys.problem import Gold, Problem
from codemonkeys.records import Record, read_json_file, read_record_data
from codemonkeys.report.metrics import majority_vote_expectation
from codemonkeys.report.model import STAGES, ProblemData, ProblemRow, Report, StageCost
from codemonkeys.report.summary import summarise
from codemonkeys.run_patches import (
    alias_stripped,
    load_trajectories,
    patch_identity,
    trajectory_attempt_patches,
    trajectory_final_patch,
)
from codemonkeys.run_records import ProblemResult
from codemonkeys.selection.records import SelectionRecord
from codemonkeys.store import read_jsonl

Json = dict[str, Any]
T = TypeVar("T", bound=BaseModel)


def build_report(run_dir: Path | str) -> Report:
    """Everything measurable about a run directory. Never raises on partial records."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"no run directory at {run_dir}")
    report = Report(run=run_dir.name, run_dir=str(run_dir.resolve()))
    _read_run_files(report, run_dir)
    report.cost_by_stage, calls_cost, calls_stage = load_calls(run_dir)
    problems = run_dir / "problems"
    pdirs = sorted(p for p in problems.glob("*") if p.is_dir()) if problems.is_dir() else []
    loaded: list[ProblemData] = []
    for pdir in pdirs:
        try:
            loaded.append(load_problem(pdir, calls_cost, calls_stage))
            report.warnings.extend(loaded[-1].warnings)
        except Exception as e:  # a malformed record must not hide the other problems
            report.warnings.append(
                f"{pdir.name}: could not read its records ({type(e).__name__}: {e})"
            )
            loaded.append(
                ProblemData(row=ProblemRow(id=pdir.name, status="unreadable", error=str(e)))
            )
    report.problems = [d.row for d in loaded]
    summarise(report, loaded)
    _analyse(report, run_dir)
    return report


def _analyse(report: Report, run_dir: Path) -> None:
    """Forecasts, temperatures, adaptive decisions; a failure there never hides the rest."""
    try:
        report.analysis = analyse_run(run_dir)
    except Exception as e:
        report.warnings.append(f"analysis failed: {type(e).__name__}: {e}")


def _read_run_files(report: Report, run_dir: Path) -> None:
    """The run's status (status.json) and models (config.json)."""
    status = read_json_file(run_dir / "status.json")
    if isinstance(status, dict):
        report.run_status = str(status.get("status") or "") or None
    config = read_json_file(run_dir / "config.json")
    models = config.get("models") if isinstance(config, dict) else None
    for role in ("primary", "relevance"):
        ep = models.get(role) if isinstance(models, dict) else None
        if isinstance(ep, dict) and ep.get("model"):
            report.models[role] = str(ep["model"])


def load_calls(
    run_dir: Path,
) -> tuple[dict[str, StageCost], dict[str, float], dict[str, dict[str, float]]]:
    """Cost per stage, per problem and per (problem, stage) from calls.jsonl."""
    by_stage: dict[str, StageCost] = {}
    by_problem: dict[str, float] = defaultdict(float)
    by_problem_stage: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for rec in read_jsonl(run_dir / "calls.jsonl"):
        stage = str(rec.get("stage") or "other")
        sc = by_stage.setdefault(stage, StageCost())
        cost = float(rec.get("cost_usd") or 0.0)
        usage = rec.get("usage") or {}
        sc.calls += 1
        sc.cost_usd += cost
        sc.input_tokens += int(usage.get("input_tokens") or 0)
        sc.output_tokens += int(usage.get("output_tokens") or 0)
        sc.cache_read_tokens += int(usage.get("cache_read_tokens") or 0)
        sc.cache_write_tokens += int(usage.get("cache_write_tokens") or 0)
        sc.model_seconds += float(rec.get("seconds") or 0.0)
        pid = str(rec.get("problem") or "")
        by_problem[pid] += cost
        by_problem_stage[pid][stage] += cost
    order = {s: i for i, s in enumerate(STAGES)}
    by_stage = dict(sorted(by_stage.items(), key=lambda kv: (order.get(kv[0], 99), kv[0])))
    return by_stage, dict(by_problem), {k: dict(v) for k, v in by_problem_stage.items()}


def load_problem(
    pdir: Path, calls_cost: Mapping[str, float], calls_stage: Mapping[str, dict[str, float]]
) -> ProblemData:
    """One problem directory's row and figures."""
    warnings: list[str] = []
    result = _typed(pdir, Record.RESULT, ProblemResult, warnings)
    selection = _typed(pdir, Record.SELECTION, SelectionRecord, warnings)
    problem = _typed(pdir, Record.PROBLEM, Problem, warnings)
    pid = result.id if result else problem.id if problem else pdir.name
    candidates = _candidates(result, selection)
    identify = patch_identity(pdir)
    in_progress = "in progress" if (pdir / Record.PROBLEM.file).exists() else "unknown"
    row = ProblemRow(
        id=pid,
        status=result.status if result else in_progress,
        error=(result.error or None) if result else None,
        candidates=len(candidates),
        chosen_id=_chosen_id(result, selection, identify),
        cost_usd=round(calls_cost.get(pid, result.cost_usd if result else 0.0), 6),
        cost_by_stage=dict(calls_stage.get(pid, {})),
        stage_seconds=dict(result.stage_seconds) if result else {},
        sandbox_seconds=dict(result.sandbox_seconds) if result else {},
    )
    data = ProblemData(row=row)
    labels = _grade(row, read_record_data(pdir, Record.EVALUATION), selection, result)
    _label_candidates(data, candidates, labels)
    _vote_figures(data, selection, candidates, labels)
    _trajectory_figures(data, pdir, labels, identify)
    row.context_recall = context_recall(
        _typed(pdir, Record.CONTEXT, ContextRecord, warnings),
        _typed(pdir, Record.GOLD, Gold, warnings),
    )
    data.warnings = warnings
    return data


def _typed(pdir: Path, record: Record, cls: type[T], warnings: list[str]) -> T | None:
    """The record as its writer's type; None when absent, or (with a warning) when it does
    not parse (a record from an incompatible version)."""
    data = read_record_data(pdir, record)
    if not data:
        return None
    try:
        return cls.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(x) for x in first["loc"])
        warnings.append(
            f"{pdir.name}: {record.file} does not parse as {cls.__name__} "
            f"({where}: {first['msg']}); left out"
        )
        return None


def _candidates(result: ProblemResult | None, selection: SelectionRecord | None) -> list[Json]:
    """The result's candidates (id, sources, votes), else selection's (a problem whose
    result is not written yet)."""
    found = [c for c in result.candidates if "id" in c] if result else []
    if not found and selection:
        found = [{"id": c.id, "sources": list(c.sources)} for c in selection.candidates]
    return found


def _chosen_id(
    result: ProblemResult | None,
    selection: SelectionRecord | None,
    identify: Callable[[str], str],
) -> str | None:
    chosen_id = (result.chosen_id if result else None) or (
        selection.chosen_id if selection else None
    )
    if chosen_id:
        return chosen_id
    if result and result.chosen_patch.strip():
        return identify(result.chosen_patch)
    return None


def _grade(
    row: ProblemRow,
    evaluation: Json,
    selection: SelectionRecord | None,
    result: ProblemResult | None,
) -> dict[str, bool]:
    """Set the row's verdict from evaluation.json (``swebench.run.evaluation_record``);
    returns the graded labels by candidate id."""
    labels: dict[str, bool] = {}
    if isinstance(evaluation.get("grading_seconds"), int | float):
        row.grading_seconds = float(evaluation["grading_seconds"])
    if evaluation:
        row.evaluated = True
        raw = evaluation.get("candidates")
        if isinstance(raw, dict):
            labels = {str(k): bool(v) for k, v in raw.items() if v is not None}
        if selection:
            alias_stripped(labels, selection)
        if evaluation.get("verdict") == "ungraded" or (
            "chosen" in evaluation and evaluation["chosen"] is None
        ):
            row.evaluated = False
            row.verdict = "ungraded"
            row.ungraded_reason = str(evaluation.get("reason") or "no verdict from the harness")
        elif isinstance(evaluation.get("chosen"), bool):
            row.resolved = evaluation["chosen"]
        elif row.chosen_id in labels:
            row.resolved = labels[row.chosen_id]
    elif result and not row.chosen_id:
        row.evaluated, row.resolved = True, False  # nothing chosen: trivially unresolved
    if row.resolved is not None:
        row.verdict = "resolved" if row.resolved else "unresolved"
    return labels


def _label_candidates(data: ProblemData, candidates: list[Json], labels: dict[str, bool]) -> None:
    row = data.row
    if candidates and all(str(c["id"]) in labels for c in candidates):
        data.has_candidate_labels = True
        data.labels = [labels[str(c["id"])] for c in candidates]
        for c in candidates:
            traj_sources = [s for s in c.get("sources") or [] if "traj" in str(s)]
            data.weighted.append((labels[str(c["id"])], max(len(traj_sources), 1)))
    elif not candidates and row.evaluated:
        data.has_candidate_labels = True  # no candidates: nothing could be correct
    if data.has_candidate_labels:
        row.correct_candidates = sum(data.labels)
        # The chosen patch is one of the candidates: if the harness says it resolved the
        # issue, the problem is covered even when a candidate's own grading disagreed.
        row.covered = any(data.labels) or bool(row.resolved)


def _vote_figures(
    data: ProblemData,
    selection: SelectionRecord | None,
    candidates: list[Json],
    labels: dict[str, bool],
) -> None:
    """Votes, the majority vote, the fused rule and the regression verifier's flags."""
    row = data.row
    data.votes = _votes_of(selection, candidates)
    if row.chosen_id and row.chosen_id in data.votes:
        row.chosen_votes = data.votes[row.chosen_id]
    broken = _regressions_of(selection)
    if row.chosen_id in broken:
        row.chosen_regressions = broken[row.chosen_id]
    if not data.has_candidate_labels:
        return
    # The paper's metric: ties are averaged, never broken by our ranking's tie-breaks.
    if data.votes:
        row.majority_correct = majority_vote_expectation(data.votes, labels)
    elif not candidates:
        row.majority_correct = 0.0
    ties = _fusion_ties(selection)
    if ties and all(t in labels for t in ties):
        row.fused_correct = sum(labels[t] for t in ties) / len(ties)
    flagged = [cid for cid, n in broken.items() if n > 0 and cid in labels]
    row.regression_flagged = len(flagged)
    row.regression_flagged_correct = sum(labels[c] for c in flagged)
    row.regression_flagged_wrong = len(flagged) - row.regression_flagged_correct


def _votes_of(selection: SelectionRecord | None, candidates: list[Json]) -> dict[str, int]:
    """Selection's ``votes``, else the votes the result carries per candidate."""
    votes = dict(selection.votes) if selection else {}
    if not votes:
        for c in candidates:
            if isinstance(c.get("votes"), (int, float)):
                votes[str(c["id"])] = int(c["votes"])
    return votes


def _fusion_ties(selection: SelectionRecord | None) -> list[str]:
    """The fused rule's best candidates (kept, tied on votes with the first kept one)."""
    kept = [e for e in selection.fusion.ranking if e.kept] if selection else []
    return [e.id for e in kept if e.votes == kept[0].votes]


def _regressions_of(selection: SelectionRecord | None) -> dict[str, int]:
    """Candidate id -> existing tests broken, for candidates with regression evidence."""
    if not selection or selection.regression is None:
        return {}
    return {
        cid: len(c.regressions)
        for cid, c in selection.regression.candidates.items()
        if c.status == "ok"
    }


def _trajectory_figures(
    data: ProblemData, pdir: Path, labels: dict[str, bool], identify: Callable[[str], str]
) -> None:
    """Final patches (parallel scaling) and per-attempt patches (serial scaling)."""
    row = data.row
    trajs = [t for _, t in load_trajectories(pdir)]
    row.trajectories = len(trajs)
    if not data.has_candidate_labels:
        return
    if not trajs:
        if data.weighted:
            # No trajectory records (e.g. an ensemble run): count trajectories from sources.
            n = sum(w for _, w in data.weighted)
            data.samples = (n, sum(w for ok, w in data.weighted if ok))
            row.trajectories, row.correct_trajectories = data.samples
        else:
            # Nothing generated (a failed problem): it counts as 0 at every k and budget,
            # like in the resolve rate and the coverage.
            data.samples, data.attempts = (0, 0), []
        return
    finals = [_label(labels, trajectory_final_patch(t), identify) for t in trajs]
    if all(f is not None for f in finals):
        c = sum(bool(f) for f in finals)
        row.correct_trajectories = c
        data.samples = (len(finals), c)
    per_attempt = [
        [_label(labels, p, identify) for p in trajectory_attempt_patches(t)] for t in trajs
    ]
    ungraded = sum(v is None for t in per_attempt for v in t)
    if any(per_attempt) and not ungraded:
        data.attempts = [[bool(v) for v in t] for t in per_attempt]
    data.ungraded_attempts = ungraded


def _label(
    labels: Mapping[str, bool], patch: str, identify: Callable[[str], str] = candidate_id
) -> bool | None:
    if not patch or not patch.strip():
        return False  # an empty patch never resolves an issue
    val = labels.get(identify(patch))
    return None if val is None else bool(val)


def context_recall(context: ContextRecord | None, gold: Gold | None) -> float | None:
    """Recall of the gold patch's files in the packed context: the context record's own
    metric (``metrics.recall``) when it has one, else computed from its packed files and
    the gold patch."""
    if context is None:
        return None
    if context.metrics is not None:
        if context.metrics.get("gold_files") == 0:
            return None  # no gold files known: a recall of 1.0 would mean nothing
        if "recall" in context.metrics:
            return float(context.metrics["recall"])
    gold_files = gold.edited_files() if gold else []
    if not gold_files:
        return None
    paths = {p.path for p in context.packed}
    return sum(f in paths for f in gold_files) / len(gold_files)
