"""A finished (or partial) run's records turned into the analysis views and the what-if
inputs; no model call, nothing executed. Correctness comes from ``evaluation.json``
(``codemonkeys swebench evaluate``; intermediate edits only with ``--intermediate``): a
problem without it is left out of every view that needs labels."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from codemonkeys.analysis.forecast import forecast_coverage, forecast_curves
from codemonkeys.analysis.passk import pass_at_k_curve
from codemonkeys.analysis.views import (
    AdaptiveProblem,
    AdaptiveView,
    CoverageForecast,
    RunAnalysis,
    TemperatureRow,
    TemperatureView,
)
from codemonkeys.analysis.whatif import ProblemOutcome, TrajectoryOutcome
from codemonkeys.generation.records import AdaptiveRecord, TrajectoryRecord
from codemonkeys.records import Record, read_record_data
from codemonkeys.run_patches import (
    alias_stripped,
    load_trajectories,
    patch_identity,
    trajectory_attempt_patches,
    trajectory_final_patch,
)
from codemonkeys.selection.records import SelectionRecord
from codemonkeys.store import read_jsonl

GENERATION_STAGES = ("tests", "edits")


def _problem_dirs(run_dir: Path) -> list[Path]:
    root = run_dir / "problems"
    return sorted(p for p in root.glob("*") if p.is_dir()) if root.is_dir() else []


def _selection(pdir: Path) -> SelectionRecord | None:
    data = read_record_data(pdir, Record.SELECTION)
    try:
        return SelectionRecord.model_validate(data) if data else None
    except ValueError:  # the report names the record that does not parse
        return None


def _labels(pdir: Path, selection: SelectionRecord | None) -> dict[str, bool] | None:
    """Harness labels by candidate id (None: never evaluated), as the report reads them."""
    raw = read_record_data(pdir, Record.EVALUATION).get("candidates")
    if not isinstance(raw, dict):
        return None
    labels = {str(k): bool(v) for k, v in raw.items() if v is not None}
    if selection is not None:
        alias_stripped(labels, selection)
    return labels


def _trajectory(
    traj: TrajectoryRecord, labels: Mapping[str, bool], identify: Callable[[str], str]
) -> TrajectoryOutcome:
    patches = trajectory_attempt_patches(traj) or [trajectory_final_patch(traj)]
    cands = [identify(p) if p.strip() else None for p in patches]
    if not any(cands):
        cands = []
    return TrajectoryOutcome(
        temperature=traj.temperature,
        candidates=cands,
        correct=[labels.get(c) if c else False for c in cands],
        test_cost_usd=traj.cost_usd.get("tests", 0.0),
        edit_cost_usd=traj.cost_usd.get("edits", 0.0),
    )


def _stage_costs(run_dir: Path) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for rec in read_jsonl(run_dir / "calls.jsonl"):
        by_stage = out.setdefault(str(rec.get("problem") or ""), {})
        stage = str(rec.get("stage") or "other")
        by_stage[stage] = by_stage.get(stage, 0.0) + float(rec.get("cost_usd") or 0.0)
    return out


def problem_outcomes(run_dir: Path | str) -> tuple[list[ProblemOutcome], int]:
    """The labelled problems' trajectories (per attempt), votes and fixed cost; and how
    many problems had no labels (left out)."""
    run_dir = Path(run_dir)
    costs = _stage_costs(run_dir)
    out, unlabelled = [], 0
    for pdir in _problem_dirs(run_dir):
        selection = _selection(pdir)
        labels = _labels(pdir, selection)
        trajs = load_trajectories(pdir)
        if labels is None or not trajs:
            unlabelled += 1
            continue
        identify = patch_identity(pdir)
        votes = selection.votes if selection is not None else {}
        stage_cost = costs.get(pdir.name, {})
        out.append(
            ProblemOutcome(
                id=pdir.name,
                trajectories=[_trajectory(t, labels, identify) for _, t in trajs],
                votes=dict(votes),
                fixed_cost_usd=sum(v for k, v in stage_cost.items() if k not in GENERATION_STAGES),
            )
        )
    return out, unlabelled


def coverage_forecasts(problems: list[ProblemOutcome]) -> list[CoverageForecast]:
    """Samples: fitted on the unbiased pass@k curve up to the run's N. Attempts: on
    coverage per edit-attempt budget, when every intermediate patch was graded."""
    out = []
    finals = [[t.at(10**9)[1] for t in p.trajectories] for p in problems]
    samples = [(len(f), sum(bool(x) for x in f)) for f in finals if None not in f]
    n = max((s[0] for s in samples), default=0)
    if n >= 2:
        fc = forecast_coverage(samples, [2 * n, 4 * n], fit_k_max=n)
        measured = pass_at_k_curve(samples, n)[-1]
        out.append(CoverageForecast(axis="samples", budget=n, measured=measured,
                                    problems=len(samples), forecasts=fc))  # fmt: skip
    graded = [p for p in problems if all(None not in t.correct for t in p.trajectories)]
    a = max((len(t.correct) for p in graded for t in p.trajectories), default=0)
    if a >= 2:
        curves = [[float(any(t.at(k)[1] for t in p.trajectories)) for k in range(1, a + 1)]
                  for p in graded]  # fmt: skip
        fc = forecast_curves(curves, [2 * a, 4 * a])
        measured = sum(c[-1] for c in curves) / len(curves)
        out.append(CoverageForecast(axis="attempts", budget=a, measured=measured,
                                    problems=len(graded), forecasts=fc))  # fmt: skip
    return out


def temperature_view(problems: list[ProblemOutcome]) -> TemperatureView | None:
    """Coverage per temperature, their union, and problems only one temperature solved;
    None unless the run sampled more than one temperature."""
    temps = sorted({t.temperature for p in problems for t in p.trajectories})
    if len(temps) < 2 or not problems:
        return None
    solved: dict[float, set[str]] = {t: set() for t in temps}
    for p in problems:
        for t in p.trajectories:
            if t.at(10**9)[1]:
                solved[t.temperature].add(p.id)
    rows = []
    for temp in temps:
        others = set().union(*(solved[o] for o in temps if o != temp))
        rows.append(
            TemperatureRow(
                temperature=temp,
                trajectories=sum(t.temperature == temp for p in problems for t in p.trajectories),
                coverage=len(solved[temp]) / len(problems),
                only_here=sorted(solved[temp] - others),
            )
        )
    union = set().union(*solved.values())
    return TemperatureView(problems=len(problems), rows=rows, union=len(union) / len(problems))


def adaptive_view(run_dir: Path) -> AdaptiveView | None:
    """Each problem's adaptive sampling decisions (``adaptive.json``); None when the run
    did not sample adaptively. An unreadable record is skipped."""
    view = AdaptiveView()
    for pdir in _problem_dirs(run_dir):
        raw = read_record_data(pdir, Record.ADAPTIVE)
        try:
            rec = AdaptiveRecord.model_validate(raw) if raw else None
        except ValueError:
            rec = None
        if rec is None or not rec.decisions:
            continue
        last = rec.decisions[-1]
        view.problems.append(
            AdaptiveProblem(
                id=pdir.name,
                trajectories=last.evidence.started,
                limit=rec.limit,
                waves=len(rec.decisions),
                final_action=last.action,
                reason=last.reason,
            )
        )
    return view if view.problems else None


def analyse_run(run_dir: Path | str) -> RunAnalysis:
    run_dir = Path(run_dir)
    problems, _ = problem_outcomes(run_dir)
    return RunAnalysis(
        forecasts=coverage_forecasts(problems),
        temperatures=temperature_view(problems),
        adaptive=adaptive_view(run_dir),
    )
