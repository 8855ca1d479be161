"""The same predictions graded twice, as a user would: by the plain official harness
(``python -m swebench.harness.run_evaluation``, one run per prediction set, as
``shared/data/instances/verify/run_harness.sh`` runs it) and by ``codemonkeys swebench
evaluate`` on a run directory holding the same patches as one problem's candidates.
Used by tests/benchmarks/bench_evaluate.py and the CI equality test.

A verdict is compared per (set, instance): resolved or not, and graded or not (a patch
the plain harness errored on may be ungraded for us, never a verdict). For every graded
patch the per-test outcomes (``tests_status`` of the two ``report.json``) are compared too:
equal outcomes show the same eval script ran and the same log parser read it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from codemonkeys.candidates import candidate_id
from codemonkeys.pipeline import ProblemResult
from codemonkeys.records import Record
from codemonkeys.run_patches import patch_identity
from codemonkeys.store import RunStore
from codemonkeys.swebench.dataset import to_problem
from codemonkeys.swebench.evaluate import patch_key
from codemonkeys.swebench.run import DATASET_FILE

SETS = ("gold", "noop", "empty", "gemini", "haiku")
Preds = dict[str, dict[str, dict[str, Any]]]
"""set -> instance_id -> harness prediction (instance_id, model_name_or_path, model_patch)."""


def prediction_sets(rows: Sequence[Mapping[str, Any]], verify: Path, sets: Sequence[str]) -> Preds:
    """Each set's prediction for each row: gold from the row's patch, the others from
    ``verify/preds_<set>.jsonl`` (an instance a set lacks gets an empty patch)."""
    ids = [r["instance_id"] for r in rows]
    out: Preds = {}
    for name in sets:
        if name == "gold":
            found = {r["instance_id"]: r["patch"] for r in rows}
            model = "gold"
        else:
            lines = (verify / f"preds_{name}.jsonl").read_text().splitlines()
            preds = [json.loads(line) for line in lines if line.strip()]
            found = {p["instance_id"]: p.get("model_patch") or "" for p in preds}
            model = preds[0]["model_name_or_path"]
        out[name] = {
            iid: {
                "instance_id": iid,
                "model_name_or_path": model,
                "model_patch": found.get(iid, ""),
            }
            for iid in ids
        }
    return out


def _write_jsonl(path: Path, rows: Sequence[Mapping[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(dict(r)) + "\n" for r in rows))
    return path


def plain_harness(
    rows: Sequence[Mapping[str, Any]],
    preds: Preds,
    work: Path,
    *,
    max_workers: int = 2,
    concurrent: bool = False,
) -> float:
    """Grade every set with the plain harness in ``work`` (one run ``plain-<set>`` each; one
    after another as run_harness.sh does, or all at once with ``concurrent``); wall seconds."""
    work.mkdir(parents=True, exist_ok=True)
    dataset = _write_jsonl(work / "rows.jsonl", rows)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    commands = []
    for name, by_id in preds.items():
        path = (
            "gold"
            if name == "gold"
            else str(_write_jsonl(work / f"{name}.jsonl", list(by_id.values())))
        )
        commands.append(
            [
                sys.executable,
                "-m",
                "swebench.harness.run_evaluation",
                "--dataset_name",
                str(dataset),
            ]
            + ["--predictions_path", path, "--run_id", f"plain-{name}"]
            + ["--max_workers", str(max_workers)]
        )
    t0 = time.monotonic()
    procs: list[subprocess.Popen[bytes]] = []
    for i, cmd in enumerate(commands):
        log = (work / f"harness.{i}.log").open("wb")
        procs.append(subprocess.Popen(cmd, cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT))
        if not concurrent:
            procs[-1].wait()
    for proc in procs:
        proc.wait()
    return time.monotonic() - t0


def plain_outcome(work: Path, name: str, pred: Mapping[str, Any]) -> tuple[str, dict | None]:
    """(resolved | unresolved | empty | error, the instance's report) of one prediction
    graded by the plain harness, read as its summary counts it (from report.json)."""
    if not (pred["model_patch"] or "").strip():
        return "empty", None
    model = pred["model_name_or_path"].replace("/", "__")
    report = _report(work / "logs" / "run_evaluation" / f"plain-{name}" / model, pred)
    if report is None:
        return "error", None
    return ("resolved" if report["resolved"] else "unresolved"), report


def _report(model_dir: Path, pred: Mapping[str, Any]) -> dict | None:
    path = model_dir / pred["instance_id"] / "report.json"
    try:
        return json.loads(path.read_text())[pred["instance_id"]]
    except (OSError, ValueError, KeyError):
        return None


def make_run(run_dir: Path, rows: Sequence[Mapping[str, Any]], preds: Preds) -> None:
    """A run directory ``swebench evaluate`` grades: the rows, and per instance one
    problem whose candidates are the sets' distinct patches (written through the typed
    records, as ``ensemble`` writes other systems' patches)."""
    store = RunStore(run_dir)
    _write_jsonl(run_dir / DATASET_FILE, rows)
    for row in rows:
        iid = row["instance_id"]
        store.write_json(store.problem_dir(iid) / Record.PROBLEM.file, to_problem(row)[0])
        sources: dict[str, list[str]] = {}
        patches: dict[str, str] = {}
        for name, by_id in preds.items():
            patch = by_id[iid]["model_patch"] or ""
            if patch.strip():
                patches.setdefault(candidate_id(patch), patch)
                sources.setdefault(candidate_id(patch), []).append(name)
        candidates = [{"id": c, "patch": p, "sources": sources[c]} for c, p in patches.items()]
        result = ProblemResult(
            id=iid,
            status="done",
            chosen_patch=next(iter(patches.values()), ""),
            candidates=candidates,
        )
        store.save_record(iid, Record.RESULT, result, "grading-compare")


def run_ours(run_dir: Path, *, workers: int = 2, cli: Sequence[str] | None = None) -> float:
    """``codemonkeys swebench evaluate RUN --workers N`` as a user runs it; wall seconds."""
    cmd = [*(cli or [sys.executable, "-m", "codemonkeys"]), "swebench", "evaluate", str(run_dir)]
    t0 = time.monotonic()
    proc = subprocess.run(
        [*cmd, "--workers", str(workers)], capture_output=True, text=True, timeout=3600
    )
    wall = time.monotonic() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"swebench evaluate failed:\n{proc.stdout}\n{proc.stderr}")
    return wall


def our_outcome(run_dir: Path, pred: Mapping[str, Any]) -> tuple[str, dict | None]:
    """(resolved | unresolved | empty | ungraded, our harness report) of one prediction,
    from the problem's evaluation.json."""
    patch = pred["model_patch"] or ""
    if not patch.strip():
        return "empty", None
    problem = run_dir / "problems" / pred["instance_id"]
    evaluation = json.loads((problem / "evaluation.json").read_text())
    verdict = evaluation["candidates"].get(patch_identity(problem)(patch))
    report = _our_report(run_dir, pred)
    if verdict is None:
        return "ungraded", report
    return ("resolved" if verdict else "unresolved"), report


def _our_report(run_dir: Path, pred: Mapping[str, Any]) -> dict | None:
    """Our harness report of this patch: graded under its own hash, or under the patch of
    the same identity that was graded in its place (each distinct patch is graded once)."""
    logs = run_dir / "evaluation" / "logs" / "run_evaluation"
    iid, patch = pred["instance_id"], pred["model_patch"]
    same = [d.parent for d in logs.glob(f"*/cm-{patch_key(patch)}/{iid}")]
    cid = candidate_id(patch)
    for d in logs.glob(f"*/cm-*/{iid}/patch.diff"):
        if d.parent.parent not in same and candidate_id(d.read_text()) == cid:
            same.append(d.parent.parent)
    return next((r for r in (_report(d, pred) for d in same) if r is not None), None)


def our_containers(run_dir: Path) -> int:
    """How many patches ``swebench evaluate`` graded in a container."""
    return len(list((run_dir / "evaluation" / "logs").rglob("run_instance.log")))


def compare(work: Path, run_dir: Path, preds: Preds) -> dict[str, Any]:
    """Every (set, instance): both outcomes; the verdict mismatches and the graded
    patches whose per-test outcomes differ."""
    table, verdict_mismatches, report_mismatches = [], [], []
    for name, by_id in preds.items():
        for iid, pred in by_id.items():
            plain, plain_report = plain_outcome(work, name, pred)
            ours, our_report = our_outcome(run_dir, pred)
            table.append({"set": name, "instance": iid, "plain": plain, "ours": ours})
            same_resolved = (plain == "resolved") == (ours == "resolved")
            if not same_resolved or (ours == "ungraded" and plain != "error"):
                verdict_mismatches.append(table[-1])
            if plain_report is not None and (
                our_report is None or our_report["tests_status"] != plain_report["tests_status"]
            ):
                report_mismatches.append(table[-1])
    return {
        "table": table,
        "verdict_mismatches": verdict_mismatches,
        "report_mismatches": report_mismatches,
    }
