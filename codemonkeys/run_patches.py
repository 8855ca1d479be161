"""The patches a run recorded for one problem, read through the typed records.

Shared by the report, the ``show`` page and ``swebench evaluate`` (which grades exactly the
patches the report looks labels up for): the trajectories (``TrajectoryRecord``), their
final and per-attempt patches, the ids the run gave its candidates (``patch_identity``)
and every distinct patch worth grading (``patches_for_grading``). No presentation here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from pydantic import ValidationError

from codemonkeys.candidates import candidate_id, normalize_patch
from codemonkeys.generation.records import TrajectoryRecord
from codemonkeys.records import (
    Record,
    read_json_file,
    read_record_data,
    trajectory_files,
    trajectory_name,
    unwrap,
)
from codemonkeys.selection.records import SelectionRecord

log = logging.getLogger(__name__)


def load_trajectories(problem_dir: Path) -> list[tuple[str, TrajectoryRecord]]:
    """(name, record) per ``trajectory-<i>.json``, else the trajectories of the
    ``generation.json`` record. A record that is unreadable or does not parse as a
    ``TrajectoryRecord`` (cut short by a kill) is skipped with a warning."""
    out = []
    for path in trajectory_files(problem_dir):
        record = _trajectory(unwrap(read_json_file(path)), path)
        if record is not None:
            out.append((path.stem, record))
    if not out:
        trajectories = read_record_data(problem_dir, Record.GENERATION).get("trajectories")
        for data in trajectories if isinstance(trajectories, list) else []:
            record = _trajectory(data, Path(problem_dir) / Record.GENERATION.file)
            if record is not None:
                out.append((trajectory_name(record.index), record))
    return out


def _trajectory(data: object, source: Path) -> TrajectoryRecord | None:
    try:
        return TrajectoryRecord.model_validate(data)
    except ValidationError as e:
        log.warning("%s holds a record that is not a trajectory (%s); skipped", source, e)
        return None


def trajectory_final_patch(traj: TrajectoryRecord) -> str:
    """The patch a trajectory submitted (``edits[current_edit].patch``; "" when none)."""
    current = traj.current_edit
    if current is not None and 0 <= current < len(traj.edits):
        return traj.edits[current].patch
    return ""


def trajectory_attempt_patches(traj: TrajectoryRecord) -> list[str]:
    """The candidate in force after each editing attempt 1..A (serial scaling): the last
    edit that applied by then, "" before any did. Each edit carries the editing ``attempt``
    (model call) that wrote it and ``edit_attempts`` counts the calls; an edit that did not
    apply has an empty patch and leaves the previous one in force."""
    if not traj.edits:
        return []
    by_attempt = {e.attempt: e.patch for e in traj.edits if e.patch.strip()}
    n = max(traj.edit_attempts, max(e.attempt for e in traj.edits))
    out, current = [], ""
    for a in range(1, n + 1):
        current = by_attempt.get(a, current)
        out.append(current)
    return out


def patch_identity(problem_dir: Path | str) -> Callable[[str], str]:
    """The id of a patch as the run gave it. Generation and selection identify a patch by
    the files it produces from the base (``candidate_id`` with the base files, which a
    report does not have): a patch the run recorded keeps that id; any other patch gets
    ``candidate_id`` of its text. Evaluation labels and the report's lookups both go
    through this, so they always agree."""
    problem_dir = Path(problem_dir)
    known: dict[str, str] = {}
    generation = read_record_data(problem_dir, Record.GENERATION)
    selection = read_record_data(problem_dir, Record.SELECTION)
    generated = generation.get("candidates")
    for holder in (generated if isinstance(generated, dict) else {}, selection):
        for c in holder.get("candidates") or []:
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

    def add(p: object) -> None:
        if isinstance(p, str) and p.strip():
            patches.setdefault(identify(p), p)

    result = read_record_data(problem_dir, Record.RESULT)
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


def alias_stripped(labels: dict[str, bool], selection: SelectionRecord) -> None:
    """Selection strips test-file hunks from candidates, which changes their ids; graded
    labels are keyed by the stripped id. Give the original (trajectory) id the same label;
    an edit that only touched test files (no stripped id) is an empty patch: wrong."""
    for s in selection.stripped:
        if s.new_id is None:
            labels.setdefault(s.original_id, False)
        elif s.new_id in labels:
            labels.setdefault(s.original_id, labels[s.new_id])
