"""JobSignals: the first SIGINT/SIGTERM sets the job's stop flag; a second aborts at once,
without waiting for worker threads that are still busy."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

from tests.conftest import ROOT

CHILD = textwrap.dedent(
    """
    import sys, threading
    from codemonkeys.interrupts import JobSignals

    busy = threading.Event()
    with JobSignals() as signals:
        worker = threading.Thread(target=busy.wait, args=(600,))  # ignores the stop flag
        worker.start()
        print("READY", flush=True)
        signals.stop.wait()
        print("STOPPING", signals.received, flush=True)
        worker.join()
    """
)


def _child() -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", CHILD],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )


def test_first_signal_sets_the_stop_flag_second_aborts_at_once():
    for sig in (signal.SIGTERM, signal.SIGINT):
        proc = _child()
        try:
            assert proc.stdout.readline().strip() == "READY"
            proc.send_signal(sig)
            assert proc.stdout.readline().split() == ["STOPPING", str(int(sig))]
            proc.send_signal(sig)
            assert proc.wait(timeout=30) == 128 + sig  # the busy worker was not waited for
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        err = proc.stderr.read()
        assert "stopping" in err and "aborting now" in err


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
