"""JobSignals: the first SIGINT/SIGTERM sets the job's stop flag; a second one, sent after
the first was acknowledged, aborts at once without waiting for worker threads that are
still busy (and the open run's status.json says ``aborted``); the same signal delivered
twice at once (process group + ``uv run`` forwarding it) stops cleanly."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import textwrap
import time

from tests.conftest import ROOT

AGAIN_AFTER_S = 0.3
"""The children's window: a repeat within it is the same signal delivered twice."""

CHILD = textwrap.dedent(
    f"""
    import sys, threading
    from pathlib import Path
    from codemonkeys.config import Config
    from codemonkeys.interrupts import JobSignals
    from codemonkeys.pipeline import open_run

    busy = threading.Event()
    with JobSignals(again_after_s={AGAIN_AFTER_S}) as signals:
        rt = open_run(Path(sys.argv[1]), Config(), stop=signals.stop)
        worker = threading.Thread(target=busy.wait, args=(600,))  # ignores the stop flag
        worker.start()
        print("READY", flush=True)
        signals.stop.wait()
        print("STOPPING", signals.received, flush=True)
        worker.join()
    """
)

POLITE_CHILD = textwrap.dedent(
    """
    import sys, threading
    from codemonkeys.interrupts import JobSignals

    with JobSignals(again_after_s=10) as signals:
        worker = threading.Thread(target=signals.stop.wait)  # honours the stop flag
        worker.start()
        print("READY", flush=True)
        worker.join()
        sys.stdin.readline()  # the job's own wind-down, until the test has sent both
        print("STOPPED CLEANLY", signals.received, flush=True)
    raise SystemExit(signals.exit_code)
    """
)


def _child(run_dir=None, code: str = CHILD) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", code, str(run_dir)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )


def test_first_signal_sets_the_stop_flag_second_aborts_at_once_and_records_it(tmp_path):
    for sig in (signal.SIGTERM, signal.SIGINT):
        run_dir = tmp_path / sig.name
        proc = _child(run_dir)
        try:
            assert proc.stdout.readline().strip() == "READY"
            proc.send_signal(sig)
            assert proc.stdout.readline().split() == ["STOPPING", str(int(sig))]
            time.sleep(AGAIN_AFTER_S + 0.2)  # the user's second signal comes later
            proc.send_signal(sig)
            assert proc.wait(timeout=30) == 128 + sig  # the busy worker was not waited for
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        err = proc.stderr.read()
        assert "stopping" in err and "aborting now" in err
        status = json.loads((run_dir / "status.json").read_text())
        assert status["status"] == "aborted" and status["signal"] == sig.name, status


def test_one_signal_delivered_twice_at_once_stops_cleanly():
    """``timeout``/systemd signal the whole process group and ``uv run`` forwards the same
    signal to its child, a moment later: one request to stop, not two."""
    for sig in (signal.SIGTERM, signal.SIGINT):
        proc = _child(code=POLITE_CHILD)
        try:
            assert proc.stdout.readline().strip() == "READY"
            proc.send_signal(sig)
            assert "stopping" in proc.stderr.readline() + proc.stderr.readline()
            proc.send_signal(sig)  # the forwarded copy, after the first was acknowledged
            with contextlib.suppress(BrokenPipeError):  # an abort has closed it
                proc.stdin.write("done\n")
                proc.stdin.flush()
            assert proc.wait(timeout=30) == 128 + sig
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        out, err = proc.stdout.read(), proc.stderr.read()
        assert f"STOPPED CLEANLY {int(sig)}" in out, out + err
        assert "aborting now" not in err, err


def test_building_a_pool_or_opening_a_run_installs_no_signal_handler(tmp_path):
    """Handlers belong to the job's entry (JobSignals), never to constructing a pool or a
    run: a library user's own handlers stay in place."""
    import threading

    from codemonkeys.config import Config
    from codemonkeys.interrupts import HANDLED
    from codemonkeys.pipeline import open_run
    from codemonkeys.sandbox.pool import SandboxPool
    from codemonkeys.sandbox.spec import SandboxSpec

    def mine(signum, frame):
        pass

    previous = {sig: signal.signal(sig, mine) for sig in HANDLED}
    try:
        pool = SandboxPool(SandboxSpec(kind="local"), size=1, stop=threading.Event())
        rt = open_run(tmp_path / "run", Config())
        rt.close()
        pool.close()
        assert all(signal.getsignal(sig) is mine for sig in HANDLED)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
