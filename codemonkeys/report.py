"""Reports on a run directory: metrics, a terminal table, JSON and one self-contained HTML page.

Three layers, each usable alone:

1. **Metrics** -- pure functions over plain values (booleans, counts), unit-tested with
   hand-computed numbers: resolve rate, coverage, selection accuracy, random-pick
   expectation, majority-vote accuracy, the unbiased pass@k estimator and its curves.
2. **Loading** -- ``build_report(run_dir)`` reads whatever records a run has (a run that was
   killed, a problem that failed, a stage whose record format grew a field) and never
   raises on a missing or partial record: what cannot be measured is ``None`` and the
   reason lands in ``Report.warnings``.
3. **Rendering** -- ``render_terminal`` (rich), ``Report.model_dump_json()``, ``render_html``
   (one file: inline CSS, inline SVG plots drawn here, no JavaScript, nothing fetched), so the
   page can be mailed or archived next to the run and still open in ten years.

Denominators (stated once, used everywhere): a problem is *evaluated* when the harness
graded its chosen patch (``evaluation.json`` with a verdict) or when it has no chosen patch
at all (then it is trivially unresolved). A problem the harness never graded (its image was
missing, the harness failed: verdict ``ungraded``) is neither resolved nor unresolved: it is
left out of every denominator and counted separately (``Summary.ungraded``, a warning).
Resolve rate, coverage, random pick and majority vote are fractions of evaluated problems;
selection accuracy is a fraction of covered problems (the paper's 57.4 / 69.8 = 82%).
"""

from __future__ import annotations

import html
import json
import math
import re
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from jinja2 import Environment
from pydantic import BaseModel, Field

from codemonkeys.analysis.passk import pass_at_k, pass_at_k_curve  # noqa: F401 (re-exported)
from codemonkeys.analysis.views import RunAnalysis
from codemonkeys.candidates import candidate_id, normalize_patch
from codemonkeys.problem import patch_files
from codemonkeys.store import atomic_write_text, read_jsonl

STAGES = ("relevance", "ranking", "tests", "edits", "selection")
"""Cost stages as written in calls.jsonl, in pipeline order."""
PHASES = ("context", "generation", "selection")
"""Wall-time phases as written in result.json's ``stage_seconds``."""

# ---------------------------------------------------------------------------------------
# 1. Metrics: pure functions
# ---------------------------------------------------------------------------------------


def _frac(num: float, den: float) -> float | None:
    return num / den if den else None


def resolve_rate(resolved: Sequence[bool]) -> float | None:
    return _frac(sum(map(bool, resolved)), len(resolved))


def coverage(candidate_labels: Sequence[Sequence[bool]]) -> float | None:
    """Fraction of problems where at least one candidate is correct (the oracle)."""
    return _frac(sum(any(ls) for ls in candidate_labels), len(candidate_labels))


def selection_accuracy(chosen_correct: Sequence[bool], covered: Sequence[bool]) -> float | None:
    """Chosen-correct among problems that had a correct candidate to choose."""
    pairs = [(ch, cv) for ch, cv in zip(chosen_correct, covered, strict=True) if cv]
    return _frac(sum(bool(ch) for ch, _ in pairs), len(pairs))


def random_pick_expectation(candidate_labels: Sequence[Sequence[bool]]) -> float | None:
    """Expected resolve rate of picking one *distinct* candidate uniformly at random.
    A problem without candidates contributes 0."""
    if not candidate_labels:
        return None
    return sum(sum(ls) / len(ls) if ls else 0.0 for ls in candidate_labels) / len(candidate_labels)


def weighted_random_pick_expectation(
    weighted_labels: Sequence[Sequence[tuple[bool, int]]],
) -> float | None:
    """Expected resolve rate of picking one *trajectory* at random: each distinct candidate
    weighted by how many trajectories produced it (duplicates are likelier picks)."""
    if not weighted_labels:
        return None
    total = 0.0
    for ls in weighted_labels:
        w = sum(max(wt, 0) for _, wt in ls)
        total += sum(max(wt, 0) for ok, wt in ls if ok) / w if w else 0.0
    return total / len(weighted_labels)


def majority_vote_expectation(votes: Mapping[str, int], labels: Mapping[str, bool]) -> float:
    """Expected correctness of picking the top-voted candidate, ties broken uniformly."""
    if not votes:
        return 0.0
    best = max(votes.values())
    top = [cid for cid, v in votes.items() if v == best]
    return sum(bool(labels.get(cid, False)) for cid in top) / len(top)


def mean(values: Iterable[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return sum(vals) / len(vals) if vals else None


def attempt_curves(
    problems: Sequence[Sequence[Sequence[bool]]], max_attempts: int | None = None
) -> tuple[list[float], list[float]]:
    """Serial scaling. ``problems[p][t][a]``: is trajectory t's edit after attempt a+1 correct?

    A trajectory that stopped after m attempts keeps its last edit for every larger budget
    (it would have submitted it). Returns, for budgets a = 1..A, the coverage (some
    trajectory of the problem correct) and the mean fraction of correct trajectories
    (pass@1 at that budget), each averaged over problems."""
    if not problems:
        return [], []
    a_max = max_attempts or max((len(t) for trajs in problems for t in trajs), default=0)
    cov: list[float] = []
    p1: list[float] = []
    for a in range(1, a_max + 1):
        c_sum = p_sum = 0.0
        for trajs in problems:
            states = [t[min(a, len(t)) - 1] if t else False for t in trajs]
            c_sum += any(states)
            p_sum += sum(states) / len(states) if states else 0.0
        cov.append(c_sum / len(problems))
        p1.append(p_sum / len(problems))
    return cov, p1


# ---------------------------------------------------------------------------------------
# 2. The report model
# ---------------------------------------------------------------------------------------


class StageCost(BaseModel):
    calls: int = 0
    cost_usd: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    model_seconds: float = 0.0


class ProblemRow(BaseModel):
    id: str
    status: str = "unknown"
    error: str | None = None
    evaluated: bool = False
    resolved: bool | None = None
    verdict: str | None = None
    """resolved | unresolved | ungraded (the harness never graded it) | None (not evaluated)"""
    ungraded_reason: str | None = None
    covered: bool | None = None
    candidates: int = 0
    correct_candidates: int | None = None
    trajectories: int = 0
    correct_trajectories: int | None = None
    chosen_id: str | None = None
    chosen_votes: int | None = None
    majority_correct: float | None = None
    """Top-voted candidate's correctness, ties averaged (the paper's majority vote)."""
    fused_correct: float | None = None
    """The fused rule's top (regressions then votes, no selector), ties averaged."""
    chosen_regressions: int | None = None
    """Existing tests the chosen candidate breaks (None: not measured)."""
    regression_flagged: int = 0
    """Candidates the regression verifier found breaking at least one test."""
    regression_flagged_correct: int = 0
    """...of which the harness graded correct (false positives)."""
    regression_flagged_wrong: int = 0
    """...of which the harness graded wrong (true positives)."""
    context_recall: float | None = None
    cost_usd: float = 0.0
    cost_by_stage: dict[str, float] = Field(default_factory=dict)
    stage_seconds: dict[str, float] = Field(default_factory=dict)


class Curve(BaseModel):
    name: str
    x_label: str
    y_label: str
    series: dict[str, list[float]]
    """Series name -> y values for x = 1..len."""
    problems: int
    note: str = ""


class Summary(BaseModel):
    problems: int = 0
    statuses: dict[str, int] = Field(default_factory=dict)
    evaluated: int = 0
    resolved: int = 0
    ungraded: int = 0
    """Problems whose chosen patch the harness never graded: not in any denominator."""
    resolve_rate: float | None = None
    coverage: float | None = None
    selection_accuracy: float | None = None
    random_pick: float | None = None
    random_pick_weighted: float | None = None
    majority_vote: float | None = None
    majority_vote_problems: int = 0
    fused_rule: float | None = None
    fused_rule_problems: int = 0
    regression_flagged: int = 0
    regression_flagged_correct: int = 0
    regression_flagged_wrong: int = 0
    context_recall: float | None = None
    context_recall_problems: int = 0
    total_cost_usd: float = 0.0
    cost_per_problem_usd: float | None = None
    calls: int = 0


class Report(BaseModel):
    run: str
    run_dir: str
    generated_at: float = Field(default_factory=time.time)
    run_status: str | None = None
    models: dict[str, str] = Field(default_factory=dict)
    summary: Summary = Field(default_factory=Summary)
    cost_by_stage: dict[str, StageCost] = Field(default_factory=dict)
    seconds_by_phase: dict[str, float] = Field(default_factory=dict)
    """Summed wall seconds per phase over problems (result.json stage_seconds)."""
    mean_seconds_by_phase: dict[str, float] = Field(default_factory=dict)
    curves: list[Curve] = Field(default_factory=list)
    problems: list[ProblemRow] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    analysis: RunAnalysis | None = None
    """Forecasts, temperatures, adaptive sampling, Table-1 costs (``analysis/runview.py``)."""


# ---------------------------------------------------------------------------------------
# 3. Loading a run directory (tolerant of missing and partial records)
# ---------------------------------------------------------------------------------------


def read_json_file(path: Path) -> Any | None:
    """A JSON file's content or None when absent/unreadable (a record cut short by a kill)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return None


def unwrap(raw: Any) -> Any:
    """The payload of a ``RunStore.save_record`` envelope, or the raw value otherwise."""
    if isinstance(raw, dict) and "data" in raw and ("fingerprint" in raw or "saved_at" in raw):
        return raw["data"]
    return raw


def load_record(problem_dir: Path, name: str) -> Any | None:
    return unwrap(read_json_file(problem_dir / f"{name}.json"))


def _trajectory_files(problem_dir: Path) -> list[Path]:
    def index(p: Path) -> tuple[int, str]:
        m = re.search(r"(\d+)", p.stem)
        return (int(m.group(1)) if m else 1 << 30, p.name)

    found = list(problem_dir.glob("trajectory-*.json")) + list(
        problem_dir.glob("trajectories/*.json")
    )
    return sorted(found, key=index)


_PATCH_KEYS = ("patch", "final_patch", "edit_patch", "diff", "model_patch")


def _patch_of(obj: Any) -> str | None:
    if isinstance(obj, dict):
        for key in _PATCH_KEYS:
            val = obj.get(key)
            if isinstance(val, str):
                return val
    return None


def trajectory_final_patch(traj: Mapping[str, Any]) -> str:
    """The patch a trajectory submitted ("" when it produced none).

    Knows the generation stage's ``TrajectoryRecord`` (``edits[current_edit].patch``) and
    falls back to a plain ``final_patch`` / ``patch`` field."""
    edits, current = traj.get("edits"), traj.get("current_edit")
    if isinstance(edits, list) and "current_edit" in traj:
        if isinstance(current, int) and 0 <= current < len(edits):
            return _patch_of(edits[current]) or ""
        return ""
    for key in ("final_patch", "patch", "edit_patch"):
        val = traj.get(key)
        if isinstance(val, str):
            return val
    attempts = trajectory_attempt_patches(traj)
    return attempts[-1] if attempts else ""


def trajectory_attempt_patches(traj: Mapping[str, Any]) -> list[str]:
    """The candidate in force after each editing attempt 1..A (serial scaling): the last
    edit that applied by then, "" before any did.

    ``TrajectoryRecord``: ``edits`` carry the editing ``attempt`` (model call) that wrote them
    and ``edit_attempts`` counts the calls; an edit that did not apply has an empty patch and
    leaves the previous one in force. Other shapes: a list of steps (``attempts``, ``steps``,
    ``history``) whose items may carry a patch, one step per attempt."""
    edits = traj.get("edits")
    if (
        isinstance(edits, list)
        and edits
        and all(isinstance(e, dict) and "attempt" in e for e in edits)
    ):
        by_attempt: dict[int, str] = {}
        for e in edits:
            patch = _patch_of(e) or ""
            if patch.strip() and isinstance(e.get("attempt"), int):
                by_attempt[e["attempt"]] = patch
        n = traj.get("edit_attempts")
        last = max([a for a in (e.get("attempt") for e in edits) if isinstance(a, int)], default=0)
        n = max(n if isinstance(n, int) else 0, last)
        out, current = [], ""
        for a in range(1, n + 1):
            current = by_attempt.get(a, current)
            out.append(current)
        return out
    for key in ("attempts", "steps", "history"):
        steps = traj.get(key)
        if not isinstance(steps, list) or not any(
            isinstance(s, dict) and _patch_of(s) is not None for s in steps
        ):
            continue
        out, current = [], ""
        for step in steps:
            p = _patch_of(step)
            if p and p.strip():
                current = p
            out.append(current)
        return out
    return []


def load_trajectories(problem_dir: Path) -> list[tuple[str, dict[str, Any]]]:
    """(name, record) per trajectory: ``trajectory-<i>.json`` files, else the trajectories
    of a ``generation.json`` record. Unreadable files are skipped."""
    out = []
    for path in _trajectory_files(problem_dir):
        data = unwrap(read_json_file(path))
        if isinstance(data, dict):
            out.append((path.stem, data))
    if not out:
        gen = load_record(problem_dir, "generation")
        trajs = gen.get("trajectories") if isinstance(gen, dict) else None
        if isinstance(trajs, list):
            out = [
                (f"trajectory-{t.get('index', i)}", t)
                for i, t in enumerate(trajs)
                if isinstance(t, dict)
            ]
    return out


def patch_identity(problem_dir: Path | str) -> Callable[[str], str]:
    """The id of a patch as the run gave it. Generation and selection identify a patch by
    the files it produces from the base (``candidate_id`` with the base files, which a
    report does not have): a patch the run recorded keeps that id; any other patch gets
    ``candidate_id`` of its text. Evaluation labels and the report's lookups both go
    through this, so they always agree."""
    problem_dir = Path(problem_dir)
    known: dict[str, str] = {}
    generation = load_record(problem_dir, "generation")
    selection = load_record(problem_dir, "selection")
    for holder in (
        generation.get("candidates") if isinstance(generation, dict) else None,
        selection,
    ):
        cands = holder.get("candidates") if isinstance(holder, dict) else None
        for c in cands if isinstance(cands, list) else []:
            if isinstance(c, dict) and isinstance(c.get("patch"), str) and c.get("id"):
                known[normalize_patch(c["patch"])] = str(c["id"])

    def identify(patch: str) -> str:
        return known.get(normalize_patch(patch)) or candidate_id(patch)

    return identify


def patches_for_grading(problem_dir: Path | str, *, intermediate: bool = True) -> dict[str, str]:
    """Every distinct patch the report can use a label for, keyed by ``patch_identity``:
    the result's candidates, the chosen patch, each trajectory's final patch and, with
    ``intermediate``, every intermediate edit of every trajectory (grading those too gives
    the serial-scaling curve, at many more harness runs). ``swebench evaluate`` grades these
    and writes ``evaluation.json`` ``{"verdict", "chosen": bool | None, "candidates": {id:
    bool | None}}`` (None: never graded, see ``swebench.run.evaluation_record``)."""
    problem_dir = Path(problem_dir)
    patches: dict[str, str] = {}
    identify = patch_identity(problem_dir)

    def add(p: Any) -> None:
        if isinstance(p, str) and p.strip():
            patches.setdefault(identify(p), p)

    result = load_record(problem_dir, "result") or {}
    if isinstance(result, dict):
        add(result.get("chosen_patch"))
        for c in result.get("candidates") or []:
            if isinstance(c, dict):
                add(c.get("patch"))
    for _, traj in load_trajectories(problem_dir):
        add(trajectory_final_patch(traj))
        if intermediate:
            for p in trajectory_attempt_patches(traj):
                add(p)
    return patches


def _alias_stripped(labels: dict[str, bool], selection: Any) -> None:
    """Selection strips test-file hunks from candidates, which changes their ids; graded
    labels are keyed by the stripped id. Give the original (trajectory) id the same label;
    an edit that only touched test files (no stripped id) is an empty patch: wrong."""
    stripped = selection.get("stripped") if isinstance(selection, dict) else None
    for s in stripped if isinstance(stripped, list) else []:
        if not isinstance(s, dict) or not isinstance(s.get("original_id"), str):
            continue
        new_id = s.get("new_id")
        if new_id is None:
            labels.setdefault(s["original_id"], False)
        elif new_id in labels:
            labels.setdefault(s["original_id"], labels[new_id])


def _label(
    labels: Mapping[str, bool], patch: str, identify: Callable[[str], str] = candidate_id
) -> bool | None:
    if not patch or not patch.strip():
        return False  # an empty patch never resolves an issue
    val = labels.get(identify(patch))
    return None if val is None else bool(val)


def _votes_of(selection: Mapping[str, Any] | None, candidates: list[dict]) -> dict[str, int]:
    votes: dict[str, int] = {}
    if isinstance(selection, dict):
        raw = selection.get("votes")
        if isinstance(raw, dict):
            votes = {str(k): int(v) for k, v in raw.items() if isinstance(v, (int, float))}
        ranked = selection.get("ranked") or selection.get("ranking")
        if not votes and isinstance(ranked, list):
            for r in ranked:
                if isinstance(r, dict) and "id" in r and isinstance(r.get("votes"), (int, float)):
                    votes[str(r["id"])] = int(r["votes"])
    if not votes:
        for c in candidates:
            if isinstance(c.get("votes"), (int, float)):
                votes[str(c["id"])] = int(c["votes"])
    return votes


def _fusion_ties(selection: Mapping[str, Any] | None) -> list[str]:
    """The fused rule's best candidates (kept, tied on votes with the first kept one)."""
    fusion = selection.get("fusion") if isinstance(selection, dict) else None
    ranking = fusion.get("ranking") if isinstance(fusion, dict) else None
    if not isinstance(ranking, list):
        return []
    kept = [e for e in ranking if isinstance(e, dict) and e.get("kept") and "id" in e]
    return [str(e["id"]) for e in kept if e.get("votes") == kept[0].get("votes")] if kept else []


def _regressions_of(selection: Mapping[str, Any] | None) -> dict[str, int]:
    """Candidate id -> existing tests broken, for candidates with regression evidence."""
    reg = selection.get("regression") if isinstance(selection, dict) else None
    cands = reg.get("candidates") if isinstance(reg, dict) else None
    if not isinstance(cands, dict):
        return {}
    return {
        str(cid): len(v.get("regressions") or [])
        for cid, v in cands.items()
        if isinstance(v, dict) and v.get("status") == "ok"
    }


def _context_recall(context: Any, gold: Any) -> float | None:
    """Recall of the gold patch's files in the packed context: the context record's own
    metric when it has one, else computed from its file list and the gold patch."""
    if isinstance(context, dict):
        for holder in (context.get("metrics"), context):
            if not isinstance(holder, dict):
                continue
            if holder.get("gold_files") == 0:
                return None  # no gold files known: a recall of 1.0 would mean nothing
            for key in ("gold_recall", "recall", "context_recall", "gold_file_recall"):
                val = holder.get(key)
                if isinstance(val, (int, float)):
                    return float(val)
    gold_files: list[str] = []
    if isinstance(gold, dict):
        if isinstance(gold.get("patch"), str):
            gold_files = patch_files(gold["patch"])
        elif isinstance(gold.get("files"), list):
            gold_files = [str(f) for f in gold["files"]]
    if not gold_files or not isinstance(context, dict):
        return None
    packed = context.get("files") or context.get("packed") or context.get("packed_files")
    if not isinstance(packed, list):
        return None
    paths = {
        p if isinstance(p, str) else str(p.get("path", ""))
        for p in packed
        if isinstance(p, (str, dict))
    }
    return sum(f in paths for f in gold_files) / len(gold_files)


class _ProblemData(BaseModel):
    row: ProblemRow
    labels: list[bool] = Field(default_factory=list)
    weighted: list[tuple[bool, int]] = Field(default_factory=list)
    has_candidate_labels: bool = False
    samples: tuple[int, int] | None = None
    attempts: list[list[bool]] | None = None
    votes: dict[str, int] = Field(default_factory=dict)
    ungraded_attempts: int = 0


def _load_problem(
    pdir: Path, calls_cost: Mapping[str, float], calls_stage: Mapping[str, dict[str, float]]
) -> _ProblemData:
    problem = load_record(pdir, "problem") or {}
    result = load_record(pdir, "result") or {}
    evaluation = load_record(pdir, "evaluation")
    selection = load_record(pdir, "selection")
    pid = str(result.get("id") or problem.get("id") or pdir.name)

    candidates = [c for c in result.get("candidates") or [] if isinstance(c, dict) and "id" in c]
    if not candidates and isinstance(selection, dict):
        cs = selection.get("candidates")
        if isinstance(cs, list):
            candidates = [c for c in cs if isinstance(c, dict) and "id" in c]
    chosen_id = result.get("chosen_id")
    if chosen_id is None and isinstance(selection, dict):
        chosen_id = selection.get("chosen_id") or selection.get("chosen")
    chosen_id = chosen_id if isinstance(chosen_id, str) else None
    chosen_patch = result.get("chosen_patch")
    identify = patch_identity(pdir)
    if chosen_id is None and isinstance(chosen_patch, str) and chosen_patch.strip():
        chosen_id = identify(chosen_patch)

    row = ProblemRow(
        id=pid,
        status=str(
            result.get("status")
            or ("in progress" if (pdir / "problem.json").exists() else "unknown")
        ),
        error=result.get("error") or None,
        candidates=len(candidates),
        chosen_id=chosen_id,
        cost_usd=round(calls_cost.get(pid, float(result.get("cost_usd") or 0.0)), 6),
        cost_by_stage=dict(calls_stage.get(pid, {})),
        stage_seconds={
            k: float(v)
            for k, v in (result.get("stage_seconds") or {}).items()
            if isinstance(v, (int, float))
        },
    )
    data = _ProblemData(row=row)

    labels_map: dict[str, bool] = {}
    if isinstance(evaluation, dict):
        row.evaluated = True
        raw = evaluation.get("candidates")
        if isinstance(raw, dict):
            labels_map = {str(k): bool(v) for k, v in raw.items() if v is not None}
        _alias_stripped(labels_map, selection)
        if evaluation.get("verdict") == "ungraded" or (
            "chosen" in evaluation and evaluation["chosen"] is None
        ):
            row.evaluated = False
            row.verdict = "ungraded"
            row.ungraded_reason = str(evaluation.get("reason") or "no verdict from the harness")
        elif isinstance(evaluation.get("chosen"), bool):
            row.resolved = evaluation["chosen"]
        elif chosen_id in labels_map:
            row.resolved = labels_map[chosen_id]
    elif result and not (isinstance(chosen_patch, str) and chosen_patch.strip()) and not chosen_id:
        row.evaluated, row.resolved = True, False  # nothing chosen: trivially unresolved
    if row.resolved is not None:
        row.verdict = "resolved" if row.resolved else "unresolved"

    # Distinct candidates and their labels.
    if candidates and all(str(c["id"]) in labels_map for c in candidates):
        data.has_candidate_labels = True
        data.labels = [labels_map[str(c["id"])] for c in candidates]
        for c in candidates:
            traj_sources = [s for s in c.get("sources") or [] if "traj" in str(s)]
            data.weighted.append((labels_map[str(c["id"])], max(len(traj_sources), 1)))
    elif not candidates and row.evaluated:
        data.has_candidate_labels = True  # no candidates: nothing could be correct
    if data.has_candidate_labels:
        row.correct_candidates = sum(data.labels)
        # The chosen patch is one of the candidates: if the harness says it resolved the
        # issue, the problem is covered even when a candidate's own grading disagreed.
        row.covered = any(data.labels) or bool(row.resolved)

    # Votes / majority vote.
    data.votes = _votes_of(selection, candidates)
    if chosen_id and chosen_id in data.votes:
        row.chosen_votes = data.votes[chosen_id]
    broken = _regressions_of(selection)
    if chosen_id in broken:
        row.chosen_regressions = broken[chosen_id]
    if data.has_candidate_labels:
        # The paper's metric: ties are averaged, never broken by our ranking's tie-breaks.
        if data.votes:
            row.majority_correct = majority_vote_expectation(data.votes, labels_map)
        elif not candidates:
            row.majority_correct = 0.0
        ties = _fusion_ties(selection)
        if ties and all(t in labels_map for t in ties):
            row.fused_correct = sum(labels_map[t] for t in ties) / len(ties)
        flagged = [cid for cid, n in broken.items() if n > 0 and cid in labels_map]
        row.regression_flagged = len(flagged)
        row.regression_flagged_correct = sum(labels_map[c] for c in flagged)
        row.regression_flagged_wrong = len(flagged) - row.regression_flagged_correct

    # Trajectories: final patches (parallel scaling) and per-attempt patches (serial).
    trajs = [t for _, t in load_trajectories(pdir)]
    row.trajectories = len(trajs)
    if trajs and data.has_candidate_labels:
        finals = [_label(labels_map, trajectory_final_patch(t), identify) for t in trajs]
        if all(f is not None for f in finals):
            c = sum(bool(f) for f in finals)
            row.correct_trajectories = c
            data.samples = (len(finals), c)
        per_attempt = [
            [_label(labels_map, p, identify) for p in trajectory_attempt_patches(t)] for t in trajs
        ]
        ungraded = sum(v is None for t in per_attempt for v in t)
        if any(per_attempt) and not ungraded:
            data.attempts = [[bool(v) for v in t] for t in per_attempt]
        data.ungraded_attempts = ungraded
    elif not trajs and data.has_candidate_labels:
        if data.weighted:
            # No trajectory records (e.g. an ensemble run): count trajectories from sources.
            n = sum(w for _, w in data.weighted)
            data.samples = (n, sum(w for ok, w in data.weighted if ok))
            row.trajectories, row.correct_trajectories = data.samples
        else:
            # Nothing generated (a failed problem): it counts as 0 at every k and budget,
            # like in the resolve rate and the coverage.
            data.samples, data.attempts = (0, 0), []

    context = load_record(pdir, "context")
    gold = load_record(pdir, "gold")
    row.context_recall = _context_recall(context, gold)
    return data


def _load_calls(
    run_dir: Path,
) -> tuple[dict[str, StageCost], dict[str, float], dict[str, dict[str, float]]]:
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


def build_report(run_dir: Path | str) -> Report:
    """Everything measurable about a run directory. Never raises on partial records."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"no run directory at {run_dir}")
    report = Report(run=run_dir.name, run_dir=str(run_dir.resolve()))
    status = read_json_file(run_dir / "status.json")
    if isinstance(status, dict):
        report.run_status = str(status.get("status") or "") or None
    config = read_json_file(run_dir / "config.json")
    if isinstance(config, dict):
        models = config.get("models") or {}
        for role in ("primary", "relevance"):
            ep = models.get(role)
            if isinstance(ep, dict) and ep.get("model"):
                report.models[role] = str(ep["model"])

    report.cost_by_stage, calls_cost, calls_stage = _load_calls(run_dir)
    pdirs = (
        sorted(p for p in (run_dir / "problems").glob("*") if p.is_dir())
        if (run_dir / "problems").is_dir()
        else []
    )
    loaded: list[_ProblemData] = []
    for pdir in pdirs:
        try:
            loaded.append(_load_problem(pdir, calls_cost, calls_stage))
        except Exception as e:  # a malformed record must not hide the other problems
            report.warnings.append(
                f"{pdir.name}: could not read its records ({type(e).__name__}: {e})"
            )
            loaded.append(
                _ProblemData(row=ProblemRow(id=pdir.name, status="unreadable", error=str(e)))
            )
    report.problems = [d.row for d in loaded]
    _summarise(report, loaded)
    try:
        from codemonkeys.analysis.runview import analyse_run

        report.analysis = analyse_run(run_dir, report.cost_by_stage)
    except Exception as e:  # an analysis problem never hides the report
        report.warnings.append(f"analysis failed: {type(e).__name__}: {e}")
    return report


def _summarise(report: Report, loaded: list[_ProblemData]) -> None:
    s = report.summary
    s.problems = len(loaded)
    for d in loaded:
        s.statuses[d.row.status] = s.statuses.get(d.row.status, 0) + 1
    evaluated = [d for d in loaded if d.row.evaluated and d.row.resolved is not None]
    s.evaluated = len(evaluated)
    ungraded = [d.row for d in loaded if d.row.verdict == "ungraded"]
    s.ungraded = len(ungraded)
    if ungraded:
        report.warnings.append(
            f"{len(ungraded)} problem(s) were never graded by the harness and are left out of "
            "the resolve rate and every other rate (rerun `codemonkeys swebench evaluate` to "
            "grade them): "
            + "; ".join(f"{r.id}: {last_line(r.ungraded_reason or '')}" for r in ungraded[:5])
            + (f"; +{len(ungraded) - 5} more" if len(ungraded) > 5 else "")
        )
    s.resolved = sum(bool(d.row.resolved) for d in evaluated)
    s.resolve_rate = resolve_rate([bool(d.row.resolved) for d in evaluated])
    labelled = [d for d in evaluated if d.has_candidate_labels]
    if len(labelled) < len(evaluated):
        report.warnings.append(
            f"{len(evaluated) - len(labelled)} evaluated problem(s) lack labels for every candidate; "
            "coverage, selection accuracy and random pick use the other "
            f"{len(labelled)} (run `codemonkeys swebench evaluate` to grade every candidate)"
        )
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
    recalls = [d.row.context_recall for d in loaded if d.row.context_recall is not None]
    s.context_recall = mean(recalls)
    s.context_recall_problems = len(recalls)
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

    samples = [d.samples for d in labelled if d.samples is not None]
    if samples:
        curve = pass_at_k_curve(samples)
        report.curves.append(
            Curve(
                name="Scaling over samples (parallel)",
                x_label="k trajectories",
                y_label="fraction of problems",
                series={"coverage = pass@k (unbiased)": curve},
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


# ---------------------------------------------------------------------------------------
# 4. Terminal
# ---------------------------------------------------------------------------------------


def pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.1f}%"


def usd(v: float | None) -> str:
    return "-" if v is None else f"${v:,.2f}" if abs(v) >= 0.01 or v == 0 else f"${v:.4f}"


def secs(v: float | None) -> str:
    if v is None:
        return "-"
    if v < 120:
        return f"{v:.1f}s"
    if v < 7200:
        return f"{v / 60:.1f}m"
    return f"{v / 3600:.1f}h"


def summary_rows(report: Report) -> list[tuple[str, str, str]]:
    """(metric, value, explanation) shared by the terminal and HTML renderings."""
    s = report.summary
    return [
        (
            "Resolve rate",
            pct(s.resolve_rate),
            f"{s.resolved} of {s.evaluated} evaluated problems"
            + (f"; {s.ungraded} ungraded, not counted" if s.ungraded else ""),
        ),
        ("Coverage", pct(s.coverage), "some candidate correct (oracle selection)"),
        ("Selection accuracy", pct(s.selection_accuracy), "chosen correct / covered"),
        ("Random pick", pct(s.random_pick), "expected, one distinct candidate uniformly"),
        (
            "Random trajectory",
            pct(s.random_pick_weighted),
            "expected, weighted by trajectory count",
        ),
        (
            "Majority vote",
            pct(s.majority_vote),
            f"top-voted candidate, ties averaged (the paper's metric), "
            f"{s.majority_vote_problems} problems",
        ),
        (
            "Fused rule",
            pct(s.fused_rule),
            f"regressions then votes, no selector, ties averaged, {s.fused_rule_problems} problems",
        ),
        (
            "Regression verifier",
            str(s.regression_flagged),
            f"graded candidates breaking an existing test: {s.regression_flagged_wrong} wrong "
            f"(true positives), {s.regression_flagged_correct} correct (false positives)",
        ),
        (
            "Context recall",
            pct(s.context_recall),
            f"gold files in packed context, {s.context_recall_problems} problems",
        ),
        ("Total cost", usd(s.total_cost_usd), f"{s.calls} model calls"),
        ("Cost per problem", usd(s.cost_per_problem_usd), f"{s.problems} problems"),
    ]


def render_terminal(report: Report, console: Any | None = None, max_problems: int = 40) -> None:
    """Print the report as rich tables (summary, cost, time, curves, problems)."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = console or Console()
    title = f"codemonkeys report: {report.run}" + (
        f" ({report.run_status})" if report.run_status else ""
    )
    t = Table(title=title, show_header=True, header_style="bold")
    t.add_column("metric")
    t.add_column("value", justify="right")
    t.add_column("", style="dim")
    for name, value, note in summary_rows(report):
        t.add_row(name, value, note)
    console.print(t)

    if report.cost_by_stage:
        total = report.summary.total_cost_usd or 0.0
        c = Table(title="Cost per stage", header_style="bold")
        for col in (
            "stage",
            "calls",
            "cost",
            "share",
            "in tok",
            "out tok",
            "cached",
            "model s",
        ):
            c.add_column(col, justify="left" if col == "stage" else "right", no_wrap=True)
        for stage, sc in report.cost_by_stage.items():
            c.add_row(
                stage,
                str(sc.calls),
                usd(sc.cost_usd),
                pct(_frac(sc.cost_usd, total)),
                f"{sc.input_tokens:,}",
                f"{sc.output_tokens:,}",
                f"{sc.cache_read_tokens:,}",
                secs(sc.model_seconds),
            )
        console.print(c)
    if report.seconds_by_phase:
        w = Table(title="Wall time per phase", header_style="bold")
        for col in ("phase", "total", "mean per problem"):
            w.add_column(col, justify="left" if col == "phase" else "right")
        for phase, total_s in report.seconds_by_phase.items():
            w.add_row(phase, secs(total_s), secs(report.mean_seconds_by_phase.get(phase)))
        console.print(w)
    for curve in report.curves:
        ct = Table(title=f"{curve.name} ({curve.problems} problems)", header_style="bold")
        ct.add_column(curve.x_label, justify="right")
        for name in curve.series:
            ct.add_column(name, justify="right")
        length = max(len(v) for v in curve.series.values())
        for i in range(length):
            ct.add_row(
                str(i + 1), *(pct(v[i]) if i < len(v) else "-" for v in curve.series.values())
            )
        console.print(ct)

    p = Table(title="Problems", header_style="bold")
    # ids are never cut (SWE-bench ids share long prefixes: a cut id names no problem);
    # the error column gives way instead
    id_width = max((len(row.id) for row in report.problems[:max_problems]), default=7)
    p.add_column("problem", no_wrap=True, min_width=id_width)
    for col in ("status", "resolved", "covered", "cands (ok)", "regr.", "cost"):
        p.add_column(col, justify="right" if col in ("cands (ok)", "regr.", "cost") else "left")
    p.add_column("error", overflow="fold", ratio=1)
    for row in report.problems[:max_problems]:
        p.add_row(
            Text(row.id),
            Text(row.status),
            resolved_cell(row),
            _yn(row.covered),
            f"{row.candidates} ({'-' if row.correct_candidates is None else row.correct_candidates})",
            "-" if row.chosen_regressions is None else str(row.chosen_regressions),
            usd(row.cost_usd),
            Text(last_line(row.error or "")[:80]),
        )
    if len(report.problems) > max_problems:
        p.caption = f"{len(report.problems) - max_problems} more in the JSON / HTML report"
    console.print(p)
    for warning in report.warnings:
        console.print(Text("warning: ", style="yellow") + Text(warning))


def last_line(text: str) -> str:
    """The last non-blank line: for a traceback, the exception and its message."""
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else ""


def _yn(v: bool | None) -> str:
    return "-" if v is None else ("yes" if v else "no")


def resolved_cell(row: ProblemRow) -> str:
    """yes / no / ungraded (never graded: not a "no") / - (not evaluated)."""
    return "ungraded" if row.verdict == "ungraded" else _yn(row.resolved)


# ---------------------------------------------------------------------------------------
# 5. HTML with inline SVG
# ---------------------------------------------------------------------------------------

PALETTE = ("#2563eb", "#dc2626", "#059669", "#d97706", "#7c3aed", "#0891b2", "#be185d")

BASE_CSS = """
:root { --fg:#1f2328; --muted:#59636e; --line:#d1d9e0; --bg:#ffffff; --soft:#f6f8fa;
        --ok:#1a7f37; --bad:#cf222e; --accent:#2563eb; }
* { box-sizing: border-box; }
body { font: 14px/1.45 -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: var(--fg);
       background: var(--bg); margin: 0; padding: 24px 32px 48px; }
h1 { font-size: 24px; margin: 0 0 4px; } h2 { font-size: 18px; margin: 28px 0 10px;
     border-bottom: 1px solid var(--line); padding-bottom: 4px; } h3 { font-size: 15px; margin: 16px 0 6px; }
.muted { color: var(--muted); } .ok { color: var(--ok); font-weight: 600; } .bad { color: var(--bad); }
table { border-collapse: collapse; margin: 6px 0 12px; }
th, td { border: 1px solid var(--line); padding: 4px 9px; text-align: left; vertical-align: top; }
th { background: var(--soft); font-weight: 600; } td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(190px, 1fr)); gap: 10px; }
.card { border: 1px solid var(--line); border-radius: 8px; padding: 10px 12px; background: var(--soft); }
.card .v { font-size: 24px; font-weight: 650; } .card .n { font-size: 12px; color: var(--muted); }
.plots { display: flex; flex-wrap: wrap; gap: 18px; }
.plot { border: 1px solid var(--line); border-radius: 8px; padding: 8px; }
pre { background: var(--soft); border: 1px solid var(--line); border-radius: 6px; padding: 8px 10px;
      overflow-x: auto; white-space: pre-wrap; word-break: break-word; font: 12px/1.4 ui-monospace, Menlo, Consolas, monospace; margin: 4px 0 10px; }
.warn { background: #fff8c5; border: 1px solid #d4a72c; border-radius: 6px; padding: 6px 10px; margin: 4px 0; }
details { margin: 4px 0; } summary { cursor: pointer; } .nowrap { white-space: nowrap; }
"""

_ENV = Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True)
_ENV.filters.update(
    pct=pct,
    usd=usd,
    secs=secs,
    yn=_yn,
    resolved_cell=resolved_cell,
    lastline=lambda t: last_line(str(t)),
)

REPORT_TEMPLATE = _ENV.from_string(
    """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>codemonkeys report: {{ r.run }}</title>
<style>{{ css | safe }}</style></head>
<body>
<h1>codemonkeys report: {{ r.run }}</h1>
<div class="muted">{{ r.run_dir }} &middot; generated {{ generated }}
{% if r.run_status %} &middot; run status: {{ r.run_status }}{% endif %}
{% for role, m in r.models.items() %} &middot; {{ role }} model: {{ m }}{% endfor %}</div>

<h2>Summary</h2>
<div class="cards">
{% for name, value, note in rows %}
<div class="card"><div class="n">{{ name }}</div><div class="v">{{ value }}</div><div class="n">{{ note }}</div></div>
{% endfor %}
</div>
{% if r.summary.statuses %}
<p class="muted">Problems by status:
{% for st, n in r.summary.statuses.items() %}<b>{{ st }}</b> {{ n }}{% if not loop.last %}, {% endif %}{% endfor %}</p>
{% endif %}
{% for w in r.warnings %}<div class="warn">{{ w }}</div>{% endfor %}

<h2>Cost</h2>
{% if r.cost_by_stage %}
<div class="plots"><div class="plot">{{ cost_svg | safe }}</div></div>
<table><tr><th>stage</th><th class="num">calls</th><th class="num">cost</th><th class="num">share</th>
<th class="num">input tokens</th><th class="num">output tokens</th><th class="num">cache read</th>
<th class="num">cache write</th><th class="num">model time</th></tr>
{% for stage, sc in r.cost_by_stage.items() %}
<tr><td>{{ stage }}</td><td class="num">{{ sc.calls }}</td><td class="num">{{ sc.cost_usd | usd }}</td>
<td class="num">{{ (sc.cost_usd / total if total else None) | pct }}</td>
<td class="num">{{ "{:,}".format(sc.input_tokens) }}</td><td class="num">{{ "{:,}".format(sc.output_tokens) }}</td>
<td class="num">{{ "{:,}".format(sc.cache_read_tokens) }}</td><td class="num">{{ "{:,}".format(sc.cache_write_tokens) }}</td>
<td class="num">{{ sc.model_seconds | secs }}</td></tr>
{% endfor %}
<tr><th>total</th><th class="num">{{ r.summary.calls }}</th><th class="num">{{ total | usd }}</th><th></th>
<th colspan="5"></th></tr>
</table>
{% else %}<p class="muted">No model calls recorded (calls.jsonl is empty or absent).</p>{% endif %}
{% if r.seconds_by_phase %}
<h3>Wall time per phase</h3>
<table><tr><th>phase</th><th class="num">total</th><th class="num">mean per problem</th></tr>
{% for phase, s in r.seconds_by_phase.items() %}
<tr><td>{{ phase }}</td><td class="num">{{ s | secs }}</td><td class="num">{{ r.mean_seconds_by_phase[phase] | secs }}</td></tr>
{% endfor %}</table>
{% endif %}

<h2>Scaling curves</h2>
{% if curves %}
<div class="plots">
{% for c, svg in curves %}<div class="plot">{{ svg | safe }}<div class="muted" style="max-width:520px">{{ c.note }} ({{ c.problems }} problems)</div></div>{% endfor %}
</div>
{% else %}<p class="muted">No curves: they need graded candidates (evaluation.json) and trajectory records.</p>{% endif %}

<h2>Problems ({{ r.problems | length }})</h2>
<table><tr><th>problem</th><th>status</th><th>resolved</th><th>covered</th><th class="num">candidates</th>
<th class="num">correct</th><th class="num">trajectories (ok)</th><th>chosen</th><th class="num">votes</th><th class="num">regressions</th>
<th class="num">ctx recall</th><th class="num">cost</th><th class="num">time</th><th>error</th></tr>
{% for p in r.problems %}
<tr><td class="nowrap">{{ p.id }}</td><td>{{ p.status }}</td>
<td class="{{ 'ok' if p.resolved else ('bad' if p.resolved is not none else '') }}"{% if p.ungraded_reason %} title="{{ p.ungraded_reason }}"{% endif %}>{{ p | resolved_cell }}</td>
<td>{{ p.covered | yn }}</td><td class="num">{{ p.candidates }}</td>
<td class="num">{{ '-' if p.correct_candidates is none else p.correct_candidates }}</td>
<td class="num">{{ p.trajectories }} ({{ '-' if p.correct_trajectories is none else p.correct_trajectories }})</td>
<td><code>{{ p.chosen_id or '-' }}</code></td><td class="num">{{ '-' if p.chosen_votes is none else p.chosen_votes }}</td>
<td class="num">{{ '-' if p.chosen_regressions is none else p.chosen_regressions }}</td>
<td class="num">{{ p.context_recall | pct }}</td><td class="num">{{ p.cost_usd | usd }}</td>
<td class="num">{{ (p.stage_seconds.values() | sum) | secs if p.stage_seconds else '-' }}</td>
<td>{% if p.error %}<details><summary>{{ p.error | lastline | truncate(80) }}</summary><pre>{{ p.error }}</pre></details>{% endif %}</td></tr>
{% endfor %}
</table>
<p class="muted">Generated by codemonkeys. Self-contained: no scripts, no external resources.</p>
</body></html>
"""
)


def _nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / count
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.ceil(lo / step) * step
    ticks = []
    v = start
    while v <= hi + 1e-9:
        ticks.append(round(v, 10))
        v += step
    return ticks


def svg_line_chart(
    series: Mapping[str, Sequence[float]],
    *,
    title: str,
    x_label: str,
    y_label: str,
    width: int = 540,
    height: int = 330,
    y_max: float = 1.0,
    percent: bool = True,
) -> str:
    """A line chart as an inline SVG string; x = 1..len(values). Text is escaped."""
    e = html.escape
    left, right, top, bottom = 56, 16, 34, 48 + 18 * ((len(series) + 1) // 2)
    height = max(height, top + bottom + 160)
    pw, ph = width - left - right, height - top - bottom
    n = max((len(v) for v in series.values()), default=1)
    x_of = (lambda x: left + pw / 2) if n <= 1 else (lambda x: left + (x - 1) / (n - 1) * pw)  # noqa: E731

    def y_of(y: float) -> float:
        return top + ph - (y / y_max) * ph

    out = [
        f'<svg width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{e(title)}" font-family="Helvetica, Arial, sans-serif">',
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="#fff"/>',
        f'<text x="{width / 2}" y="20" text-anchor="middle" font-size="14" font-weight="600">{e(title)}</text>',
    ]
    for t in _nice_ticks(0, y_max):
        y = y_of(t)
        label = f"{t * 100:.0f}%" if percent else f"{t:g}"
        out.append(
            f'<line x1="{left}" x2="{left + pw}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e5e7eb"/>'
        )
        out.append(
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11" fill="#555">{label}</text>'
        )
    step = max(1, math.ceil(n / 12))
    for x in range(1, n + 1, step):
        px = x_of(x)
        out.append(
            f'<line x1="{px:.1f}" x2="{px:.1f}" y1="{top + ph}" y2="{top + ph + 4}" stroke="#555"/>'
        )
        out.append(
            f'<text x="{px:.1f}" y="{top + ph + 17}" text-anchor="middle" font-size="11" fill="#555">{x}</text>'
        )
    out.append(
        f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#9ca3af"/>'
    )
    out.append(
        f'<text x="{left + pw / 2}" y="{top + ph + 34}" text-anchor="middle" font-size="12">{e(x_label)}</text>'
    )
    out.append(
        f'<text transform="translate(14 {top + ph / 2}) rotate(-90)" text-anchor="middle" font-size="12">{e(y_label)}</text>'
    )
    for i, (name, values) in enumerate(series.items()):
        color = PALETTE[i % len(PALETTE)]
        pts = [(x_of(j + 1), y_of(min(max(v, 0.0), y_max))) for j, v in enumerate(values)]
        if len(pts) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in pts)
            out.append(
                f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2.2"/>'
            )
        for j, (x, y) in enumerate(pts):
            val = f"{values[j] * 100:.1f}%" if percent else f"{values[j]:g}"
            out.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.2" fill="{color}"><title>{e(name)}: '
                f"{j + 1} &#8594; {val}</title></circle>"
            )
        lx = left + (i % 2) * (pw / 2)
        ly = top + ph + 52 + 18 * (i // 2)
        out.append(
            f'<line x1="{lx:.1f}" x2="{lx + 18:.1f}" y1="{ly - 4}" y2="{ly - 4}" stroke="{color}" stroke-width="3"/>'
        )
        out.append(f'<text x="{lx + 24:.1f}" y="{ly}" font-size="12">{e(name)}</text>')
    out.append("</svg>")
    return "".join(out)


def svg_bar_chart(values: Mapping[str, float], *, title: str, width: int = 540, fmt=usd) -> str:
    """Horizontal bars (one per key) as an inline SVG string, labelled with ``fmt`` and share."""
    e = html.escape
    items = list(values.items())
    row_h, top, left, right = 26, 34, 92, 150
    height = top + row_h * max(len(items), 1) + 12
    total = sum(v for _, v in items) or 1.0
    vmax = max((v for _, v in items), default=0.0) or 1.0
    pw = width - left - right
    out = [
        f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="{e(title)}" font-family="Helvetica, Arial, sans-serif">',
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="#fff"/>',
        f'<text x="{width / 2}" y="20" text-anchor="middle" font-size="14" font-weight="600">{e(title)}</text>',
    ]
    for i, (name, v) in enumerate(items):
        y = top + i * row_h
        w = max(v / vmax * pw, 1.0)
        color = PALETTE[i % len(PALETTE)]
        out.append(
            f'<text x="{left - 8}" y="{y + 16}" text-anchor="end" font-size="12">{e(name)}</text>'
        )
        out.append(
            f'<rect x="{left}" y="{y + 4}" width="{w:.1f}" height="{row_h - 8}" rx="3" fill="{color}">'
            f"<title>{e(name)}: {e(fmt(v))}</title></rect>"
        )
        out.append(
            f'<text x="{left + w + 6:.1f}" y="{y + 16}" font-size="12" fill="#333">'
            f"{e(fmt(v))} ({100 * v / total:.1f}%)</text>"
        )
    out.append("</svg>")
    return "".join(out)


def render_html(report: Report) -> str:
    """One self-contained HTML page: inline CSS and SVG, no scripts, nothing fetched."""
    curves = [
        (c, svg_line_chart(c.series, title=c.name, x_label=c.x_label, y_label=c.y_label))
        for c in report.curves
    ]
    cost_svg = svg_bar_chart(
        {k: v.cost_usd for k, v in report.cost_by_stage.items()}, title="Cost per stage"
    )
    from codemonkeys.analysis.render import analysis_html

    page = REPORT_TEMPLATE.render(
        r=report,
        css=BASE_CSS,
        rows=summary_rows(report),
        total=report.summary.total_cost_usd,
        cost_svg=cost_svg,
        curves=curves,
        generated=time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(report.generated_at)),
    )
    extra = analysis_html(report.analysis) if report.analysis is not None else ""
    return page.replace("</body>", extra + "</body>", 1)


def write_report(run_dir: Path | str, out: Path | str | None = None) -> tuple[Report, Path]:
    """Build the report and write ``report.html`` and ``report.json`` next to the run (or at
    ``out``, an .html path). Returns the report and the HTML path."""
    report = build_report(run_dir)
    html_path = Path(out) if out else Path(run_dir) / "report.html"
    html_path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(html_path, render_html(report))
    atomic_write_text(html_path.with_suffix(".json"), report.model_dump_json(indent=1))
    return report, html_path
