"""Run-wide figures from the loaded problems: rates, cost, time, scaling curves, warnings.

No IO: every figure is computed with ``codemonkeys.report.metrics`` from the problems'
``ProblemData``. Resolve rate, coverage, random pick and majority vote are fractions of
evaluated problems; selection accuracy is a fraction of covered problems (the paper's
57.4 / 69.8 = 82%).
"""

from __future__ import annotations

from collections import defaultdict

from codemonkeys.machine_time import SandboxSeconds, add_phase
from codemonkeys.report.format import last_line
from codemonkeys.report.metrics import (
    attempt_curves,
    coverage,
    mean,
    pass_at_k_curve,
    random_pick_expectation,
    resolve_rate,
    selection_accuracy,
    weighted_random_pick_expectation,
)
from codemonkeys.report.model import PHASES, Curve, ProblemData, Report


def summarise(report: Report, loaded: list[ProblemData]) -> None:
    """Fill ``report.summary``, the time per phase, the curves and the warnings."""
    s = report.summary
    s.problems = len(loaded)
    for d in loaded:
        s.statuses[d.row.status] = s.statuses.get(d.row.status, 0) + 1
    evaluated = [d for d in loaded if d.row.evaluated and d.row.resolved is not None]
    s.evaluated = len(evaluated)
    _warn_ungraded(report, loaded)
    s.resolved = sum(bool(d.row.resolved) for d in evaluated)
    s.resolve_rate = resolve_rate([bool(d.row.resolved) for d in evaluated])
    labelled = [d for d in evaluated if d.has_candidate_labels]
    if len(labelled) < len(evaluated):
        report.warnings.append(
            f"{len(evaluated) - len(labelled)} evaluated problem(s) lack labels for every candidate; "
            "coverage, selection accuracy and random pick use the other "
            f"{len(labelled)} (run `codemonkeys swebench evaluate` to grade every candidate)"
        )
    _selection_rates(report, labelled)
    recalls = [d.row.context_recall for d in loaded if d.row.context_recall is not None]
    s.context_recall = mean(recalls)
    s.context_recall_problems = len(recalls)
    _cost_and_time(report, loaded)
    _curves(report, labelled)


def _warn_ungraded(report: Report, loaded: list[ProblemData]) -> None:
    ungraded = [d.row for d in loaded if d.row.verdict == "ungraded"]
    report.summary.ungraded = len(ungraded)
    if ungraded:
        report.warnings.append(
            f"{len(ungraded)} problem(s) were never graded by the harness and are left out of "
            "the resolve rate and every other rate (rerun `codemonkeys swebench evaluate` to "
            "grade them): "
            + "; ".join(f"{r.id}: {last_line(r.ungraded_reason or '')}" for r in ungraded[:5])
            + (f"; +{len(ungraded) - 5} more" if len(ungraded) > 5 else "")
        )


def _selection_rates(report: Report, labelled: list[ProblemData]) -> None:
    """Coverage, selection accuracy, random pick, majority vote, fused rule, regressions."""
    s = report.summary
    if labelled:
        s.coverage = coverage([[*d.labels, bool(d.row.resolved)] for d in labelled])
        s.selection_accuracy = selection_accuracy(
            [bool(d.row.resolved) for d in labelled], [bool(d.row.covered) for d in labelled]
        )
        s.random_pick = random_pick_expectation([d.labels for d in labelled])
        s.random_pick_weighted = weighted_random_pick_expectation([d.weighted for d in labelled])
    majority = [d.row.majority_correct for d in labelled if d.row.majority_correct is not None]
    if majority and any(d.votes for d in labelled):
        s.majority_vote = sum(majority) / len(majority)
        s.majority_vote_problems = len(majority)
    fused = [d.row.fused_correct for d in labelled if d.row.fused_correct is not None]
    if fused:
        s.fused_rule = sum(fused) / len(fused)
        s.fused_rule_problems = len(fused)
    s.regression_flagged = sum(d.row.regression_flagged for d in labelled)
    s.regression_flagged_correct = sum(d.row.regression_flagged_correct for d in labelled)
    s.regression_flagged_wrong = sum(d.row.regression_flagged_wrong for d in labelled)


def _cost_and_time(report: Report, loaded: list[ProblemData]) -> None:
    s = report.summary
    s.total_cost_usd = round(sum(sc.cost_usd for sc in report.cost_by_stage.values()), 6)
    if not report.cost_by_stage:
        s.total_cost_usd = round(sum(d.row.cost_usd for d in loaded), 6)
    s.calls = sum(sc.calls for sc in report.cost_by_stage.values())
    s.cost_per_problem_usd = s.total_cost_usd / len(loaded) if loaded else None
    sums: dict[str, list[float]] = defaultdict(list)
    for d in loaded:
        for phase, sec in d.row.stage_seconds.items():
            sums[phase].append(sec)
    order = {p: i for i, p in enumerate(PHASES)}
    for phase in sorted(sums, key=lambda p: (order.get(p, 99), p)):
        report.seconds_by_phase[phase] = round(sum(sums[phase]), 3)
        report.mean_seconds_by_phase[phase] = round(sum(sums[phase]) / len(sums[phase]), 3)
    _machine_time(report, loaded, order)


def _machine_time(report: Report, loaded: list[ProblemData], order: dict[str, int]) -> None:
    """The sandboxes' container-seconds per phase and the grading seconds, summed."""
    sandbox: dict[str, SandboxSeconds] = {}
    for d in loaded:
        for phase, amount in d.row.sandbox_seconds.items():
            add_phase(sandbox, phase, amount)
    for phase in sorted(sandbox, key=lambda p: (order.get(p, 99), p)):
        report.sandbox_seconds_by_phase[phase] = sandbox[phase]
    graded = [d.row.grading_seconds for d in loaded if d.row.grading_seconds is not None]
    report.grading_seconds = round(sum(graded), 3) if graded else None


def _curves(report: Report, labelled: list[ProblemData]) -> None:
    """pass@k over trajectories (parallel) and coverage over edit attempts (serial)."""
    samples = [d.samples for d in labelled if d.samples is not None]
    if samples:
        report.curves.append(
            Curve(
                name="Scaling over samples (parallel)",
                x_label="k trajectories",
                y_label="fraction of problems",
                series={"coverage = pass@k (unbiased)": pass_at_k_curve(samples)},
                problems=len(samples),
                note="pass@k = 1 - C(n-c,k)/C(n,k) per problem, averaged; the oracle picks "
                "a correct one of k sampled trajectories whenever there is one.",
            )
        )
    attempts = [d.attempts for d in labelled if d.attempts is not None]
    if any(attempts):
        cov, p1 = attempt_curves(attempts)
        report.curves.append(
            Curve(
                name="Scaling over attempts (serial)",
                x_label="edit attempts per trajectory",
                y_label="fraction of problems",
                series={"coverage (all trajectories)": cov, "pass@1 (one trajectory)": p1},
                problems=len(attempts),
                note="Each trajectory truncated after a attempts keeps the edit in force then.",
            )
        )
    missing = [d for d in labelled if d.row.trajectories and d.attempts is None]
    if missing:
        ungraded = sum(d.ungraded_attempts for d in missing)
        report.warnings.append(
            f"the serial-scaling curve leaves out {len(missing)} problem(s): "
            + (
                f"{ungraded} intermediate edit states are not graded; "
                "`codemonkeys swebench evaluate RUN --intermediate` grades them"
                if ungraded
                else "their trajectory records hold no intermediate edits"
            )
        )
