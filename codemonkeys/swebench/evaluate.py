"""Grading through the official ``swebench`` harness (5.x) on the local Docker engine.

The harness runs as a subprocess (``python -m swebench.harness.run_evaluation``) so its
module-level state (logging, rlimits, tqdm, dotenv) stays out of our process, with its
working directory set to ``report_dir`` because it writes ``logs/run_evaluation/...``
relative to the cwd. It is given a local JSONL dataset file holding only the rows being
graded, each with an ``image`` (the row's, or the official name by rule): the 5.x
harness takes the image, eval script, log parser and eval type from the row, never
builds environment images without ``--task_repo``, and only pulls an image it cannot
find locally. We check the images ourselves first, so nothing is pulled behind our back.

The harness keeps one prediction per instance per run id, and caches each instance's
verdict under ``<run_id>/<model_name_or_path>/<instance_id>/report.json``. Candidate
grading therefore names each prediction after its patch's hash: a cached verdict is
reused only for the very same patch, which makes reruns resumable and never stale.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import re
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from codemonkeys.errors import CodemonkeysError
from codemonkeys.sandbox.docker_client import docker_client
from codemonkeys.swebench.dataset import DatasetError, harness_row, listed_tests, require
from codemonkeys.swebench.harness_io import (
    HARNESS_MODULE,
    drop_stale_verdict,
    eval_output_problem,
    harness_command,
    harness_log_parsers,
    instance_dir,
    instance_verdict,
    read_predictions,
    write_jsonl,
)
from codemonkeys.swebench.images import (
    ImageMissing,
    ensure_instance_image,
    image_present,
    instance_image,
)

if TYPE_CHECKING:
    from docker import DockerClient

log = logging.getLogger(__name__)

HARNESS_FIELDS = (
    "instance_id",
    "repo",
    "eval_script",
    "log_parser",
    "eval_type",
    "FAIL_TO_PASS",
    "PASS_TO_PASS",
    "test_patch",
)
"""What the 5.x harness reads from a row (``make_test_spec``) plus test_patch, which the
eval script applies: a row without it is not a gradable instance."""
EVAL_TYPES = ("pass_and_fail", "fail_only")


class HarnessMissing(CodemonkeysError, RuntimeError):
    """The ``swebench`` package (the official harness) is not importable."""


class HarnessFailed(CodemonkeysError, RuntimeError):
    """The harness process itself failed (not a patch being unresolved)."""


@dataclass
class EvaluationRun:
    """What one harness run said about each submitted instance."""

    run_id: str
    resolved: dict[str, bool | None] = field(default_factory=dict)
    """instance_id -> the verdict; None when the instance was never graded."""
    status: dict[str, str] = field(default_factory=dict)
    """instance_id -> resolved | unresolved | empty_patch | image_missing | ungradable | error"""
    reasons: dict[str, str] = field(default_factory=dict)
    """Why an instance was not graded (image_missing, ungradable: a row the harness cannot
    grade, error)."""
    report_path: Path | None = None
    log_dir: Path | None = None
    harness_log: Path | None = None


def harness_available() -> bool:
    return (
        importlib.util.find_spec("swebench") is not None
        and importlib.util.find_spec(HARNESS_MODULE) is not None
    )


def check_harness_row(row: Mapping[str, Any]) -> None:
    """Raise ``DatasetError`` naming the row and field when the harness cannot grade it."""
    require(row, HARNESS_FIELDS, "evaluation with the swebench 5.x harness")
    listed_tests(row, "FAIL_TO_PASS")
    listed_tests(row, "PASS_TO_PASS")
    if row["eval_type"] not in EVAL_TYPES:
        raise DatasetError(
            f"row {row['instance_id']!r}: eval_type {row['eval_type']!r} is not one of {', '.join(EVAL_TYPES)}"
        )
    parsers = harness_log_parsers()
    if parsers is not None and row["log_parser"] not in parsers:
        raise DatasetError(
            f"row {row['instance_id']!r}: log_parser {row['log_parser']!r} is not a parser of the installed "
            f"harness (e.g. {', '.join(sorted(parsers)[:5])}, ...)"
        )


def _index_rows(dataset_rows: Sequence[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    return {r["instance_id"]: r for r in dataset_rows}


def _checked_rows(
    instance_ids: Sequence[str], by_id: Mapping[str, Mapping[str, Any]]
) -> tuple[list[Mapping[str, Any]], dict[str, str]]:
    """(the rows the harness can grade, {instance_id: why not} for the others): one row
    the harness cannot grade is recorded and never stops the others."""
    rows: list[Mapping[str, Any]] = []
    ungradable: dict[str, str] = {}
    for iid in instance_ids:
        if iid not in by_id:
            ungradable[iid] = f"instance {iid!r} is not in the dataset"
            continue
        try:
            check_harness_row(by_id[iid])
        except DatasetError as e:
            ungradable[iid] = str(e)
            continue
        rows.append(by_id[iid])
    return rows, ungradable


def run_harness(
    predictions: Sequence[Mapping[str, Any]],
    dataset_rows: Sequence[Mapping[str, Any]],
    *,
    run_id: str,
    max_workers: int = 2,
    timeout: int = 1800,
    report_dir: str | Path,
    pull: bool = False,
    client: DockerClient | None = None,
) -> EvaluationRun:
    """Grade ``predictions`` (harness format: instance_id, model_name_or_path,
    model_patch; one per instance) against ``dataset_rows`` in one harness run.

    Instance images must be on the local engine: an absent one is pulled by us when
    ``pull`` is set, else its instance is marked ``image_missing`` (verdict None: never
    graded) and not sent to the harness, which would otherwise try a registry pull of its
    own. An empty patch is unresolved (False) without running anything."""
    if not harness_available():
        raise HarnessMissing(
            "the official SWE-bench harness is not installed: `uv sync` (dev group) or "
            "`pip install 'codemonkeys[swebench]'` (swebench>=5)"
        )
    # the harness names containers sweb.eval.<id>.<run_id>: Docker allows [A-Za-z0-9_.-]
    run_id = re.sub(r"[^A-Za-z0-9_.-]+", "_", run_id).strip("._-") or "run"
    report_dir = Path(report_dir).resolve()
    report_dir.mkdir(parents=True, exist_ok=True)
    ids = [p["instance_id"] for p in predictions]
    if len(set(ids)) != len(ids):
        raise DatasetError(
            f"run {run_id}: more than one prediction for an instance; the harness keeps one per run"
        )
    rows, ungradable = _checked_rows(ids, _index_rows(dataset_rows))
    log_dir = report_dir / "logs" / "run_evaluation" / run_id
    result = EvaluationRun(run_id=run_id, log_dir=log_dir)
    to_grade = _sendable(predictions, rows, ungradable, result, pull=pull, client=client)
    if not to_grade:  # the harness cannot write a report without a prediction
        return result
    for p in to_grade:
        drop_stale_verdict(log_dir, p)
    graded = {p["instance_id"] for p in to_grade}
    returncode = _launch(
        to_grade,
        [harness_row(r) for r in rows if r["instance_id"] in graded],
        result,
        report_dir=report_dir,
        max_workers=max_workers,
        timeout=timeout,
    )
    _collect_verdicts(result, log_dir, to_grade, returncode)
    return result


def _sendable(
    predictions: Sequence[Mapping[str, Any]],
    rows: Sequence[Mapping[str, Any]],
    ungradable: Mapping[str, str],
    result: EvaluationRun,
    *,
    pull: bool,
    client: DockerClient | None,
) -> list[dict[str, Any]]:
    """The predictions worth a harness run; the others get their verdict in ``result``
    now: ungradable row, empty patch (unresolved), image missing."""
    by_id = {r["instance_id"]: r for r in rows}
    to_grade = []
    for p in predictions:
        iid = p["instance_id"]
        if iid in ungradable:  # this instance only (never graded); the others are graded
            _not_graded(result, iid, "ungradable", ungradable[iid])
            continue
        if not (p.get("model_patch") or "").strip():
            result.resolved[iid] = False
            result.status[iid] = "empty_patch"
            continue
        if client is None:
            client = docker_client()
        missing = _image_problem(instance_image(by_id[iid]), pull=pull, client=client)
        if missing:
            _not_graded(result, iid, "image_missing", missing)
            continue
        to_grade.append({**p, "model_name_or_path": p.get("model_name_or_path") or "codemonkeys"})
    return to_grade


def _not_graded(result: EvaluationRun, iid: str, status: str, reason: str) -> None:
    result.resolved[iid] = None
    result.status[iid] = status
    result.reasons[iid] = reason
    log.warning("not grading %s: %s", iid, reason)


def _launch(
    to_grade: Sequence[Mapping[str, Any]],
    harness_rows: Sequence[Mapping[str, Any]],
    result: EvaluationRun,
    *,
    report_dir: Path,
    max_workers: int,
    timeout: int,
) -> int:
    """Run the harness on ``to_grade`` (its output in ``result.harness_log``); its exit
    status."""
    run_id = result.run_id
    dataset_file = report_dir / f"dataset.{run_id}.jsonl"
    predictions_file = report_dir / f"predictions.{run_id}.jsonl"
    write_jsonl(dataset_file, harness_rows)
    write_jsonl(predictions_file, to_grade)
    cmd = harness_command(
        dataset_file,
        predictions_file,
        run_id=run_id,
        max_workers=max_workers,
        timeout=timeout,
        report_dir=report_dir,
    )
    result.harness_log = report_dir / f"harness.{run_id}.log"
    log.info("running the SWE-bench harness: %s (cwd %s)", " ".join(cmd), report_dir)
    with result.harness_log.open("w", encoding="utf-8") as out:
        proc = subprocess.run(
            cmd, cwd=report_dir, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    model = to_grade[0]["model_name_or_path"].replace("/", "__")
    summary_path = report_dir / f"{model}.{run_id}.json"
    result.report_path = summary_path if summary_path.is_file() else None
    return proc.returncode


def _collect_verdicts(
    result: EvaluationRun, log_dir: Path, to_grade: Sequence[Mapping[str, Any]], returncode: int
) -> None:
    """Each sent instance's verdict into ``result``; ``HarnessFailed`` when the harness
    failed without grading any.

    Verdicts come from the per-instance report.json files the harness writes as each
    instance finishes, not from its end-of-run summary: the summary step lists every
    container on the engine and crashes (docker NotFound) when any other container is
    removed meanwhile, which happens whenever sandboxes run alongside evaluation."""
    run_id, harness_log = result.run_id, result.harness_log
    verdicts = {p["instance_id"]: (p, instance_verdict(log_dir, p)) for p in to_grade}
    if returncode != 0 and all(v is None for _, v in verdicts.values()):
        tail = (
            "\n".join(harness_log.read_text(errors="replace").splitlines()[-25:])
            if harness_log
            else ""
        )
        raise HarnessFailed(
            f"swebench harness run {run_id} exited {returncode} without grading any "
            f"instance; log {harness_log}:\n{tail}"
        )
    if returncode != 0:
        log.warning(
            "harness run %s exited %s after grading; see %s", run_id, returncode, harness_log
        )
    errors = []
    for iid, (pred, verdict) in verdicts.items():
        result.resolved[iid] = verdict
        if verdict is None:
            errors.append(iid)
            result.status[iid] = "error"
            where = instance_dir(log_dir, pred)
            why = eval_output_problem(where) or "the harness produced no verdict"
            result.reasons[iid] = f"{why}; see {where}"
        else:
            result.status[iid] = "resolved" if verdict else "unresolved"
    if errors:
        log.warning(
            "harness run %s: %d instance(s) errored: %s", run_id, len(errors), sorted(errors)
        )


def _image_problem(image: str, *, pull: bool, client: DockerClient) -> str | None:
    """None when ``image`` is usable, else why not."""
    if pull:
        try:
            ensure_instance_image(image, client)
        except ImageMissing as e:
            return str(e)
        return None
    if image_present(image, client):
        return None
    return f"image {image} is not on the local Docker engine (pull it, or allow pulling)"


def evaluate_predictions(
    predictions_path: str | Path,
    dataset_rows: Sequence[Mapping[str, Any]],
    *,
    run_id: str,
    max_workers: int = 2,
    timeout: int = 1800,
    report_dir: str | Path,
    pull: bool = False,
    client: DockerClient | None = None,
) -> dict[str, bool | None]:
    """Grade a predictions file (.jsonl or .json, harness format) with the official
    harness; instance_id -> resolved. Empty patches are False; an instance the harness
    never graded (image missing, harness error) is None, never False.
    A verdict the harness already has for the same (run_id, model, instance, patch)
    is reused; a changed patch is graded again."""
    predictions = read_predictions(Path(predictions_path))
    return run_harness(
        predictions,
        dataset_rows,
        run_id=run_id,
        max_workers=max_workers,
        timeout=timeout,
        report_dir=report_dir,
        pull=pull,
        client=client,
    ).resolved


def patch_key(patch: str) -> str:
    return hashlib.sha256(patch.encode("utf-8")).hexdigest()[:16]


UNGRADED_STATUSES = ("image_missing", "ungradable", "error", "harness_failed")


class Verdict(BaseModel):
    """What the harness said about one patch; ``resolved`` is None when it never graded
    it (``status`` and ``reason`` say why), which is not the same as unresolved."""

    resolved: bool | None
    status: str
    """resolved | unresolved | empty_patch | image_missing | ungradable | error |
    harness_failed"""
    reason: str = ""

    @property
    def graded(self) -> bool:
        return self.resolved is not None


EMPTY = Verdict(resolved=False, status="empty_patch")


def grade_candidates(
    candidates: Mapping[str, Sequence[tuple[str, str]]],
    dataset_rows: Sequence[Mapping[str, Any]],
    *,
    run_id_prefix: str,
    max_workers: int = 2,
    timeout: int = 1800,
    report_dir: str | Path,
    pull: bool = False,
    client: DockerClient | None = None,
) -> dict[str, dict[str, Verdict]]:
    """Grade every distinct patch of every instance:
    ``{instance_id: [(label, patch), ...]}`` -> ``{instance_id: {label: Verdict}}``.

    Patches with the same identity (``candidates.candidate_id``) are graded once, whatever
    their labels. Layer k holds the k-th distinct patch of each instance (in the order
    given) and runs as harness run ``<run_id_prefix>.L<k>`` (the harness keeps one
    prediction per instance per run). Each prediction's model name is its patch hash, so
    a rerun reuses exactly the verdicts of unchanged patches. A harness run that fails
    without grading anything leaves its patches ungraded (with the reason) and the other
    layers go on; so does a row the harness cannot grade (``ungradable``)."""
    from codemonkeys.candidates import candidate_id

    distinct = {iid: _distinct_patches(cands) for iid, cands in candidates.items()}
    verdict: dict[tuple[str, str], Verdict] = {}
    depth = max((len(v) for v in distinct.values()), default=0)
    for layer in range(depth):
        preds = _layer(distinct, layer)
        run_id = f"{run_id_prefix}.L{layer}"
        try:
            run = run_harness(
                [{k: v for k, v in p.items() if k != "cid"} for p in preds],
                dataset_rows,
                run_id=run_id,
                max_workers=max_workers,
                timeout=timeout,
                report_dir=report_dir,
                pull=pull,
                client=client,
            )
        except HarnessFailed as e:
            log.warning("harness run %s graded nothing: %s", run_id, str(e).splitlines()[0])
            failed = Verdict(resolved=None, status="harness_failed", reason=str(e))
            verdict.update({(p["instance_id"], p["cid"]): failed for p in preds})
            continue
        verdict.update(
            {(p["instance_id"], p["cid"]): _verdict_of(run, p["instance_id"]) for p in preds}
        )
    return {
        iid: {
            label: verdict[(iid, candidate_id(patch))] if (patch or "").strip() else EMPTY
            for label, patch in cands
        }
        for iid, cands in candidates.items()
    }


def _distinct_patches(cands: Sequence[tuple[str, str]]) -> dict[str, str]:
    """candidate id -> patch, the first patch of each identity, empty ones left out."""
    from codemonkeys.candidates import candidate_id

    seen: dict[str, str] = {}
    for _label, patch in cands:
        if (patch or "").strip():
            seen.setdefault(candidate_id(patch), patch)
    return seen


def _layer(distinct: Mapping[str, Mapping[str, str]], layer: int) -> list[dict[str, str]]:
    """The ``layer``-th distinct patch of each instance that has one, as a prediction named
    after its patch hash (``cid`` kept to file the verdict)."""
    preds = []
    for iid, patches in distinct.items():
        if layer < len(patches):
            cid, patch = list(patches.items())[layer]
            preds.append(
                {
                    "instance_id": iid,
                    "model_name_or_path": f"cm-{patch_key(patch)}",
                    "model_patch": patch,
                    "cid": cid,
                }
            )
    return preds


def _verdict_of(run: EvaluationRun, iid: str) -> Verdict:
    resolved = run.resolved.get(iid)
    status = run.status.get(iid) or (
        "error" if resolved is None else ("resolved" if resolved else "unresolved")
    )
    if status in UNGRADED_STATUSES or resolved is None:
        reason = run.reasons.get(iid) or "the harness produced no verdict"
        return Verdict(resolved=None, status=status, reason=reason)
    return Verdict(resolved=bool(resolved), status=status)


def evaluate_candidates(
    candidates: Mapping[str, Sequence[tuple[str, str]]],
    dataset_rows: Sequence[Mapping[str, Any]],
    **kwargs: Any,
) -> dict[str, dict[str, bool | None]]:
    """``grade_candidates`` as plain verdicts: True / False, None when never graded."""
    graded = grade_candidates(candidates, dataset_rows, **kwargs)
    return {iid: {label: v.resolved for label, v in vs.items()} for iid, vs in graded.items()}
