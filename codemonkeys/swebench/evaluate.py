"""Grading through the official ``swebench`` harness (5.x) on the local Docker engine.

The harness runs as a subprocess (``python -m codemonkeys.swebench.harness_runner``: the
harness's own per-instance ``run_instance``, without its 15 s stop waits, every run in one
process) so its module-level state (logging, rlimits, tqdm, dotenv) stays out of our
process, with its working directory set to ``report_dir`` because it writes
``logs/run_evaluation/...`` relative to the cwd. It is given a local JSONL dataset file
holding only the rows being graded, each with an ``image`` (the row's, or the official name
by rule): the 5.x harness takes the image, eval script, log parser and eval type from the
row, and only pulls an image it cannot find locally. We check the images ourselves first,
so nothing is pulled behind our back.

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
from codemonkeys.swebench.dataset import DatasetError, harness_row
from codemonkeys.swebench.harness_io import (
    HARNESS_MODULE,
    checked_rows,
    drop_stale_verdict,
    eval_output_problem,
    harness_command,
    instance_dir,
    instance_verdict,
    read_job_seconds,
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
    log_dir: Path | None = None
    harness_log: Path | None = None
    seconds: dict[str, float] = field(default_factory=dict)
    """instance_id -> machine seconds its grading took (container and harness work)."""


def harness_available() -> bool:
    return (
        importlib.util.find_spec("swebench") is not None
        and importlib.util.find_spec(HARNESS_MODULE) is not None
    )


def run_harness(
    predictions: Sequence[Mapping[str, Any]],
    dataset_rows: Sequence[Mapping[str, Any]],
    *,
    run_id: str,
    **kwargs: Any,
) -> EvaluationRun:
    """Grade ``predictions`` (harness format: instance_id, model_name_or_path,
    model_patch; one per instance) against ``dataset_rows`` as one harness run
    (``run_harness_runs`` with one run; same keyword arguments)."""
    return run_harness_runs({run_id: predictions}, dataset_rows, **kwargs)[run_id]


def safe_run_id(run_id: str) -> str:
    """The harness names containers sweb.eval.<id>.<run_id>: Docker allows [A-Za-z0-9_.-]."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", run_id).strip("._-") or "run"


def run_harness_runs(
    runs: Mapping[str, Sequence[Mapping[str, Any]]],
    dataset_rows: Sequence[Mapping[str, Any]],
    *,
    max_workers: int = 2,
    timeout: int = 1800,
    report_dir: str | Path,
    pull: bool = False,
    client: DockerClient | None = None,
) -> dict[str, EvaluationRun]:
    """Grade several harness runs (run id -> its predictions, one per instance) in one
    process of the harness's own per-instance grading (``harness_runner``); the result of
    each run, keyed as given.

    Instance images must be on the local engine: an absent one is pulled by us when
    ``pull`` is set, else its instance is marked ``image_missing`` (verdict None: never
    graded) and not sent to the harness, which would otherwise try a registry pull of its
    own. An empty patch is unresolved (False) without running anything. ``HarnessFailed``
    when the harness process failed without grading anything."""
    if not harness_available():
        raise HarnessMissing(
            "the official SWE-bench harness is not installed: `uv sync` (dev group) or "
            "`pip install 'codemonkeys[swebench]'` (swebench>=5)"
        )
    report_dir = Path(report_dir).resolve()
    report_dir.mkdir(parents=True, exist_ok=True)
    by_id = {r["instance_id"]: r for r in dataset_rows}
    planned: dict[str, _Planned] = {}
    for given, predictions in runs.items():
        planned[given] = _plan(safe_run_id(given), predictions, by_id, report_dir)
        planned[given].sendable(pull=pull, client=client)
        client = planned[given].client
    jobs = [(run.result.run_id, p) for run in planned.values() for p in run.to_grade]
    if jobs:  # the harness cannot grade without a prediction
        rows = [harness_row(by_id[iid]) for iid in sorted({p["instance_id"] for _, p in jobs})]
        label = safe_run_id(next(iter(runs)))
        launched = _launch(jobs, rows, label, report_dir, max_workers, timeout)
        _collect_verdicts(list(planned.values()), *launched)
    return {given: run.result for given, run in planned.items()}


@dataclass
class _Planned:
    """One harness run before grading: its result so far, where its logs go, the
    predictions to send (each with a model name) and the rows they need."""

    result: EvaluationRun
    log_dir: Path
    predictions: Sequence[Mapping[str, Any]]
    rows: list[Mapping[str, Any]]
    ungradable: dict[str, str]
    to_grade: list[dict[str, Any]] = field(default_factory=list)
    client: DockerClient | None = None

    def sendable(self, *, pull: bool, client: DockerClient | None) -> None:
        self.to_grade, self.client = _sendable(
            self.predictions, self.rows, self.ungradable, self.result, pull=pull, client=client
        )
        for p in self.to_grade:
            drop_stale_verdict(self.log_dir, p)


def _plan(
    run_id: str,
    predictions: Sequence[Mapping[str, Any]],
    by_id: Mapping[str, Mapping[str, Any]],
    report_dir: Path,
) -> _Planned:
    ids = [p["instance_id"] for p in predictions]
    if len(set(ids)) != len(ids):
        raise DatasetError(
            f"run {run_id}: more than one prediction for an instance; the harness keeps one per run"
        )
    rows, ungradable = checked_rows(ids, by_id)
    log_dir = report_dir / "logs" / "run_evaluation" / run_id
    result = EvaluationRun(run_id=run_id, log_dir=log_dir)
    return _Planned(result, log_dir, predictions, rows, ungradable)


def _sendable(
    predictions: Sequence[Mapping[str, Any]],
    rows: Sequence[Mapping[str, Any]],
    ungradable: Mapping[str, str],
    result: EvaluationRun,
    *,
    pull: bool,
    client: DockerClient | None,
) -> tuple[list[dict[str, Any]], DockerClient | None]:
    """The predictions worth grading (and the Docker client, made when first needed); the
    others get their verdict in ``result`` now: ungradable row, empty patch (unresolved),
    image missing."""
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
    return to_grade, client


def _not_graded(result: EvaluationRun, iid: str, status: str, reason: str) -> None:
    result.resolved[iid] = None
    result.status[iid] = status
    result.reasons[iid] = reason
    log.warning("not grading %s: %s", iid, reason)


def _launch(
    jobs: Sequence[tuple[str, Mapping[str, Any]]],
    harness_rows: Sequence[Mapping[str, Any]],
    label: str,
    report_dir: Path,
    max_workers: int,
    timeout: int,
) -> tuple[int, Path, dict[tuple[str, str], float]]:
    """Run the harness on ``jobs`` ((run id, prediction) pairs); its exit status, the file
    holding its output and the seconds each job took."""
    dataset_file = report_dir / f"dataset.{label}.jsonl"
    jobs_file = report_dir / f"jobs.{label}.jsonl"
    times_file = report_dir / f"times.{label}.jsonl"
    times_file.unlink(missing_ok=True)
    write_jsonl(dataset_file, harness_rows)
    write_jsonl(jobs_file, [{"run_id": run_id, "prediction": p} for run_id, p in jobs])
    cmd = harness_command(
        dataset_file, jobs_file, max_workers=max_workers, timeout=timeout, times_file=times_file
    )
    harness_log = report_dir / f"harness.{label}.log"
    log.info("running the SWE-bench harness: %s (cwd %s)", " ".join(cmd), report_dir)
    with harness_log.open("w", encoding="utf-8") as out:
        proc = subprocess.run(
            cmd, cwd=report_dir, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    return proc.returncode, harness_log, read_job_seconds(times_file)


def _collect_verdicts(
    planned: Sequence[_Planned],
    returncode: int,
    harness_log: Path,
    seconds: Mapping[tuple[str, str], float],
) -> None:
    """Each sent instance's verdict into its run's result; ``HarnessFailed`` when the
    harness failed without grading any. Verdicts come from the per-instance report.json
    files the harness writes as each instance finishes."""
    verdicts = [(run, p, instance_verdict(run.log_dir, p)) for run in planned for p in run.to_grade]
    if returncode != 0 and all(v is None for _, _, v in verdicts):
        tail = "\n".join(harness_log.read_text(errors="replace").splitlines()[-25:])
        raise HarnessFailed(
            f"swebench harness ({harness_log.name}) exited {returncode} without grading any "
            f"instance; log {harness_log}:\n{tail}"
        )
    if returncode != 0:
        log.warning("the harness exited %s after grading; see %s", returncode, harness_log)
    for run, pred, verdict in verdicts:
        iid, result = pred["instance_id"], run.result
        result.harness_log = harness_log
        result.resolved[iid] = verdict
        result.seconds[iid] = seconds.get((result.run_id, iid), 0.0)
        if verdict is None:
            result.status[iid] = "error"
            where = instance_dir(run.log_dir, pred)
            why = eval_output_problem(where) or "the harness produced no verdict"
            result.reasons[iid] = f"{why}; see {where}"
            log.warning("harness run %s: %s errored: %s", result.run_id, iid, why)
        else:
            result.status[iid] = "resolved" if verdict else "unresolved"


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
    seconds: float = 0.0
    """Machine seconds grading it took (0: not run now: empty, cached, never sent)."""

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
    given) and is harness run ``<run_id_prefix>.L<k>`` (the harness keeps one prediction
    per instance per run); every layer is graded in one harness process, in parallel up to
    ``max_workers``. Each prediction's model name is its patch hash, so a rerun reuses
    exactly the verdicts of unchanged patches. A harness process that fails without grading
    anything leaves the patches ungraded (``harness_failed``, with the reason); a row the
    harness cannot grade is that instance's ``ungradable`` and the others go on."""
    from codemonkeys.candidates import candidate_id

    distinct = {iid: _distinct_patches(cands) for iid, cands in candidates.items()}
    depth = max((len(v) for v in distinct.values()), default=0)
    layers = {f"{run_id_prefix}.L{layer}": _layer(distinct, layer) for layer in range(depth)}
    verdict = _grade_layers(
        layers,
        dataset_rows,
        max_workers=max_workers,
        timeout=timeout,
        report_dir=report_dir,
        pull=pull,
        client=client,
    )
    return {
        iid: {
            label: verdict[(iid, candidate_id(patch))] if (patch or "").strip() else EMPTY
            for label, patch in cands
        }
        for iid, cands in candidates.items()
    }


def _grade_layers(
    layers: Mapping[str, Sequence[Mapping[str, str]]],
    dataset_rows: Sequence[Mapping[str, Any]],
    **kwargs: Any,
) -> dict[tuple[str, str], Verdict]:
    """Every layer graded in one harness process: (instance_id, cid) -> its verdict."""
    try:
        runs = run_harness_runs(
            {
                run_id: [{k: v for k, v in p.items() if k != "cid"} for p in preds]
                for run_id, preds in layers.items()
            },
            dataset_rows,
            **kwargs,
        )
    except HarnessFailed as e:
        log.warning("the harness graded nothing: %s", str(e).splitlines()[0])
        failed = Verdict(resolved=None, status="harness_failed", reason=str(e))
        return {(p["instance_id"], p["cid"]): failed for ps in layers.values() for p in ps}
    return {
        (p["instance_id"], p["cid"]): _verdict_of(run, p["instance_id"])
        for run_id, run in runs.items()
        for p in layers[run_id]
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
    seconds = run.seconds.get(iid, 0.0)
    if status in UNGRADED_STATUSES or resolved is None:
        reason = run.reasons.get(iid) or "the harness produced no verdict"
        return Verdict(resolved=None, status=status, reason=reason, seconds=seconds)
    return Verdict(resolved=bool(resolved), status=status, seconds=seconds)


def evaluate_candidates(
    candidates: Mapping[str, Sequence[tuple[str, str]]],
    dataset_rows: Sequence[Mapping[str, Any]],
    **kwargs: Any,
) -> dict[str, dict[str, bool | None]]:
    """``grade_candidates`` as plain verdicts: True / False, None when never graded."""
    graded = grade_candidates(candidates, dataset_rows, **kwargs)
    return {iid: {label: v.resolved for label, v in vs.items()} for iid, vs in graded.items()}
