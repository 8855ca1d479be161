"""The official harness's own per-instance grading, without its idle waits.

Run as ``python -m codemonkeys.swebench.harness_runner`` (a subprocess, working directory
= the report directory, like ``python -m swebench.harness.run_evaluation``) so the
harness's module-level state (logging, rlimits, tqdm, dotenv) stays out of our process.
Each prediction is graded by the harness's ``run_instance``: the same container, patch
application, eval script (``make_test_spec``), log parser and grading
(``get_eval_report``), and the same ``report.json`` under
``logs/run_evaluation/<run_id>/<model>/<instance>/``. What differs, none of it a verdict:

- The finished container is removed with a kill (``remove(force=True)``) instead of the
  harness's ``docker stop --time=15``: its PID 1 is ``tail -f /dev/null``, which ignores
  SIGTERM, so every stop waited the full 15 s. ``run_instance`` cleans up in its
  ``finally``, after the verdict is written, so nothing it grades can see the difference.
- One process grades the predictions of many harness runs (one per run id: the harness
  keeps one prediction per instance per run) in one thread pool, instead of one process
  per run with its start-up and its last, lonely instance.
- Each job logs through its own logger (``own_loggers``): the harness names loggers after
  the instance, and here two candidates of one instance can be graded at once.
- No end-of-run summary (``make_run_report``): the caller reads each instance's
  ``report.json``; the summary lists every container on the engine and crashes when one
  disappears meanwhile, which happens whenever sandboxes run alongside.

Each prediction gets a fresh container of its instance image, as in the harness. Reusing
one container per problem with a reset between candidates was not done: the instance images
carry uncommitted edits (sphinx's ``tox.ini``: ``pytest -rA``, which the log parser needs)
and untracked state (editable installs, ``.tox``) that a reset would have to restore
exactly, and the saving is bounded by a container's create + kill (well under a second).

Input: ``--dataset_name`` (harness rows, JSONL) and ``--jobs`` (JSONL of ``{"run_id",
"prediction"}``); with ``--times``, one ``{"run_id", "instance_id", "seconds"}`` line per
job is appended there (the machine time its grading took: ``report`` shows it). Exit
status 0 when every job ran, 1 when any raised (its instance has no ``report.json``; the
caller records why).
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

MIN_HARNESS = (5, 0)
"""``run_instance(test_spec, pred, client, run_id, timeout)`` and rows carrying their eval
script are the 5.x harness's."""


def kill_container(client: Any, container: Any, logger: logging.Logger | None) -> None:
    """The harness's ``cleanup_container`` without the stop wait: kill and remove at once
    (``docker rm --force``). A container that is already gone is fine; any other failure is
    logged, as the harness does, and never raised out of its ``finally``."""
    import docker.errors

    if container is None:
        return
    try:
        container.remove(force=True)
    except docker.errors.NotFound:
        pass
    except docker.errors.APIError as e:
        if logger is not None:
            logger.error(f"Failed to remove container {container.name}: {e}")
        return
    if logger is not None:
        logger.info(f"Container {container.name} killed and removed.")


def own_loggers(setup_logger: Callable[..., Any]) -> Callable[..., Any]:
    """The harness's ``setup_logger`` with one logger per log file. It names a logger after
    the instance (``<instance_id>.run_instance.log``), which is unique within one harness
    run; here two candidates of one instance are graded at the same time, and with a shared
    logger their lines (the "Patch Apply Failed" a verdict is read from) would cross."""

    def setup(instance_id: str, log_file: Path | None = None, *args: Any, **kwargs: Any) -> Any:
        name = str(log_file.parent).replace(".", "_") if log_file is not None else instance_id
        return setup_logger(name, log_file, *args, **kwargs)

    return setup


def timed_jobs(run_instance: Callable[..., Any], times: Path | None) -> Callable[..., Any]:
    """``run_instance`` that appends each job's seconds to ``times`` (when given)."""
    lock = threading.Lock()

    def run(test_spec: Any, pred: dict[str, Any], client: Any, run_id: str, timeout: int) -> Any:
        start = time.monotonic()
        try:
            return run_instance(test_spec, pred, client, run_id, timeout)
        finally:
            line = {"run_id": run_id, "instance_id": pred["instance_id"]}
            line["seconds"] = round(time.monotonic() - start, 3)
            if times is not None:
                with lock, times.open("a", encoding="utf-8") as out:
                    out.write(json.dumps(line) + "\n")

    return run


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--dataset_name", required=True, help="harness rows (.jsonl)")
    parser.add_argument("--jobs", required=True, help='JSONL of {"run_id", "prediction"}')
    parser.add_argument("--max_workers", type=int, default=2)
    parser.add_argument("--open_file_limit", type=int, default=4096)
    parser.add_argument("--timeout", type=int, default=1800)
    parser.add_argument("--times", type=Path, help="append each job's seconds here (JSONL)")
    return parser.parse_args(argv)


def _check_version() -> None:
    import swebench

    version = tuple(int(p) for p in swebench.__version__.split(".")[:2] if p.isdigit())
    if version < MIN_HARNESS:
        sys.exit(f"swebench {swebench.__version__} is installed; grading needs swebench>=5")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    _check_version()
    from swebench.harness import run_evaluation as harness
    from swebench.harness.utils import load_swebench_dataset, make_test_spec, run_threadpool

    harness.cleanup_container = kill_container  # run_instance and create_container use it
    harness.setup_logger = own_loggers(harness.setup_logger)
    resource.setrlimit(resource.RLIMIT_NOFILE, (args.open_file_limit, args.open_file_limit))
    specs = {
        row["instance_id"]: make_test_spec(row)
        for row in load_swebench_dataset(args.dataset_name, "test")
    }
    jobs = [json.loads(line) for line in Path(args.jobs).read_text().splitlines() if line.strip()]
    for run_id in sorted({job["run_id"] for job in jobs}):
        harness.write_run_metadata(run_id, args.dataset_name, "test", None)
    client = harness._docker_client()
    payloads = [
        (
            specs[job["prediction"]["instance_id"]],
            job["prediction"],
            client,
            job["run_id"],
            args.timeout,
        )
        for job in jobs
    ]
    print(f"Running {len(payloads)} predictions...", flush=True)
    run = timed_jobs(harness.run_instance, args.times)
    _, failed = run_threadpool(run, payloads, args.max_workers)
    print(f"All predictions run; {len(failed)} raised.", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
