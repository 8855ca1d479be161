"""What a harness run reads and leaves on disk: the JSONL files and the command line we hand
the harness (``harness_runner``: its own per-instance grading), the per-instance verdicts it writes
(``logs/run_evaluation/<run_id>/<model>/<instance>/report.json``, ``run_instance.log``),
and the log parsers the installed harness knows (read from its source, not imported).
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import re
import resource
import shutil
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from codemonkeys.swebench.dataset import DatasetError, listed_tests, require

log = logging.getLogger(__name__)

HARNESS_MODULE = "swebench.harness.run_evaluation"
RUNNER_MODULE = "codemonkeys.swebench.harness_runner"
APPLY_PATCH_FAIL = ">>>>> Patch Apply Failed"  # swebench.harness.constants; its log says so
START_TEST_OUTPUT = ">>>>> Start Test Output"  # swebench.harness.constants
TEST_OUTPUT_FILE = "test_output.txt"  # swebench.harness.constants.LOG_TEST_OUTPUT


def harness_log_parsers() -> set[str] | None:
    """The harness's log parser names, read from its source rather than imported:
    importing ``swebench.harness`` pulls in datasets/modal and runs ``load_dotenv()``,
    global effects we keep out of our process. None when it cannot be read."""
    spec = importlib.util.find_spec("swebench")
    if spec is None or not spec.submodule_search_locations:
        return None
    init = (
        Path(next(iter(spec.submodule_search_locations)))
        / "harness"
        / "log_parsers"
        / "__init__.py"
    )
    try:
        names = set(re.findall(r'^\s*"(\w+)"\s*:', init.read_text(), flags=re.M))
    except OSError:
        return None
    return names or None


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


def checked_rows(
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


def read_predictions(path: Path) -> list[dict[str, Any]]:
    """A predictions file in the harness format (.jsonl, or .json: a list or a map)."""
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".jsonl":
        preds = [json.loads(line) for line in text.splitlines() if line.strip()]
    else:
        data = json.loads(text)
        preds = list(data.values()) if isinstance(data, dict) else data
    for p in preds:
        if not isinstance(p, dict) or "instance_id" not in p:
            raise DatasetError(f"{path}: every prediction needs an instance_id")
    return preds


def write_jsonl(path: Path, rows: Sequence[Mapping[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    # ensure_ascii keeps U+2028 & co. escaped: the harness splits the file with str.splitlines()
    tmp.write_text("".join(json.dumps(dict(r)) + "\n" for r in rows), encoding="utf-8")
    os.replace(tmp, path)


def _open_file_limit(wanted: int = 4096) -> int:
    """The harness sets soft = hard = this value; above our hard limit that is an error."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    return wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)


def harness_command(
    dataset_file: Path, jobs_file: Path, *, max_workers: int, timeout: int, times_file: Path
) -> list[str]:
    """The exact command line we run (cwd = the report directory): the harness's own
    per-instance grading through ``codemonkeys.swebench.harness_runner`` (no stop waits,
    many runs in one process); ``jobs_file`` holds ``{"run_id", "prediction"}`` lines, and
    the seconds each job took are appended to ``times_file``."""
    return [
        sys.executable,
        "-m",
        RUNNER_MODULE,
        "--dataset_name",
        str(dataset_file),
        "--jobs",
        str(jobs_file),
        "--max_workers",
        str(max_workers),
        "--open_file_limit",
        str(_open_file_limit()),
        "--timeout",
        str(timeout),
        "--times",
        str(times_file),
    ]


def instance_dir(log_dir: Path, pred: Mapping[str, Any]) -> Path:
    """Where the harness keeps one prediction's logs and report."""
    return log_dir / pred["model_name_or_path"].replace("/", "__") / pred["instance_id"]


def instance_verdict(log_dir: Path, pred: Mapping[str, Any]) -> bool | None:
    """The harness's verdict for one prediction (its report.json). A patch the harness
    could not apply is graded unresolved (the patch's fault, as in the official scoring);
    None when there is no verdict for another reason (container failure, timeout)."""
    inst_dir = instance_dir(log_dir, pred)
    try:
        report = json.loads((inst_dir / "report.json").read_text())[pred["instance_id"]]
        resolved = bool(report["resolved"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    else:
        return None if not resolved and eval_output_problem(inst_dir) else resolved
    try:
        instance_log = (inst_dir / "run_instance.log").read_text(errors="replace")
    except OSError:
        return None
    return False if APPLY_PATCH_FAIL in instance_log else None


def eval_output_problem(inst_dir: Path) -> str | None:
    """Why the harness's grading says nothing about the patch, or None when it does. The
    eval script traces its start marker before any test, whatever the patch does; without
    it the tests never reported (the output was lost whole: a ``docker exec`` can lose a
    short command's output; or the script died first), so "unresolved" would be a guess."""
    try:
        text = (inst_dir / TEST_OUTPUT_FILE).read_text(errors="replace")
    except OSError:
        return None
    if START_TEST_OUTPUT in text:
        return None
    if not text.strip():
        return "the harness kept no output of the eval script (lost)"
    return "the eval script ended before its tests started (no start marker)"


def drop_stale_verdict(log_dir: Path, pred: Mapping[str, Any]) -> None:
    """The harness reuses any report.json under (run_id, model, instance) without
    looking at the patch; when the patch it graded differs from this one, or its grading
    said nothing about the patch (``eval_output_problem``), remove that instance's logs so
    it is graded again instead of answering for another patch or repeating the gap."""
    inst_dir = instance_dir(log_dir, pred)
    graded = inst_dir / "patch.diff"
    if graded.is_file() and graded.read_text(errors="replace") != pred["model_patch"]:
        why = "the patch changed since it was graded"
    else:
        why = eval_output_problem(inst_dir) or ""
    if why:
        log.info("grading %s again (%s): %s", pred["instance_id"], inst_dir, why)
        shutil.rmtree(inst_dir)


def read_job_seconds(times_file: Path) -> dict[tuple[str, str], float]:
    """(run_id, instance_id) -> the seconds grading it took (``harness_runner --times``)."""
    out: dict[tuple[str, str], float] = {}
    try:
        lines = times_file.read_text(encoding="utf-8").splitlines()
    except OSError:
        return out
    for line in lines:
        try:
            job = json.loads(line)
            out[(str(job["run_id"]), str(job["instance_id"]))] = float(job["seconds"])
        except (ValueError, KeyError, TypeError):
            continue  # a line cut by a kill
    return out
