"""Running a model-written test script against a candidate patch in a sandbox.

Shared by generation (test on the original and on the edited code) and selection (the
test matrix). ``ExecutionCache`` runs each distinct (patch, script) pair exactly once per
problem, even when several threads ask for it at the same time.
"""

from __future__ import annotations

import hashlib
import logging
import shlex
import threading
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel

from codemonkeys.sandbox.base import Sandbox, SandboxError

log = logging.getLogger(__name__)

SCRIPT_DIR = "/tmp/codemonkeys"
T = TypeVar("T")


class Script(BaseModel):
    content: str
    language: Literal["python", "shell"] = "python"

    @property
    def digest(self) -> str:
        return hashlib.sha256(f"{self.language}\0{self.content}".encode()).hexdigest()[:16]

    @property
    def path(self) -> str:
        ext = "py" if self.language == "python" else "sh"
        return f"{SCRIPT_DIR}/test_{self.digest}.{ext}"

    def command(self, mark: str) -> str:
        """The command that runs the script and prints ``mark`` on a line of its own once
        it finished by itself (``test_harness.py``): Python through the harness, isolated
        from the user site and from a ``sitecustomize.py`` at the repository root."""
        if self.language == "shell":
            return f"bash {self.path}; rc=$?; printf '\\n%s\\n' {mark}; exit $rc"
        return (
            f"{ISOLATE_PYTHONPATH}CODEMONKEYS_TEST_MARK={mark} "
            f"python -s {HARNESS_PATH} {shlex.quote(self.path)}"
        )


HARNESS_PATH = f"{SCRIPT_DIR}/cm_test_harness.py"
ISOLATE_PYTHONPATH = (
    'P="${PYTHONPATH#"$PWD"}"; P="${P#:}"; '
    'if [ -n "$P" ]; then export PYTHONPATH="$P"; else unset PYTHONPATH; fi; '
)
"""Shell: the repository root (which ``Sandbox.run`` puts first) off ``PYTHONPATH``, so a
``sitecustomize.py`` there is not run when the interpreter starts."""
_HARNESS = (Path(__file__).parent / "test_harness.py").read_text()


class TestRun(BaseModel):
    patch_applied: bool = True
    patch_error: str = ""
    exit_code: int | None = None
    output: str = ""
    timed_out: bool = False
    seconds: float = 0.0
    completed: bool = True
    """The script finished by itself (the harness's completion mark was printed). False when
    the repository's code ended the interpreter (``sys.exit`` in an edited module,
    ``os._exit``): the exit code is then not the test's. Runs recorded before the mark
    existed read as True."""

    @property
    def verdict(self) -> str:
        """fixed (exit 0) / unfixed (exit 2) / crash (anything else, or a script that did
        not finish by itself) / timeout / no-apply."""
        if not self.patch_applied:
            return "no-apply"
        if self.timed_out:
            return "timeout"
        if not self.completed:
            return "crash"
        return {0: "fixed", 2: "unfixed"}.get(
            self.exit_code if self.exit_code is not None else -1, "crash"
        )


def patch_digest(patch: str | None) -> str:
    return hashlib.sha256((patch or "").encode()).hexdigest()[:16]


def run_script(sandbox: Sandbox, patch: str | None, script: Script, timeout: float) -> TestRun:
    """Apply ``patch`` (None or "" = the original code), write the script outside the repo
    and run it from the repo root. The caller hands over a clean sandbox."""
    if patch and patch.strip():
        applied = sandbox.apply_patch(patch)
        if not applied.ok:
            return TestRun(patch_applied=False, patch_error=applied.error)
    sandbox.write_file(script.path, script.content)
    if script.language == "python":
        sandbox.write_file(HARNESS_PATH, _HARNESS)
    mark = f"@@codemonkeys-test-done-{uuid.uuid4().hex}"
    res = sandbox.run(script.command(mark), timeout=timeout)
    completed = f"\n{mark}\n" in res.output or res.output.endswith(f"\n{mark}")
    output = res.output.replace(f"\n{mark}\n", "").replace(f"\n{mark}", "")
    return TestRun(
        exit_code=res.exit_code,
        output=output,
        timed_out=res.timed_out,
        seconds=res.seconds,
        completed=completed,
    )


class ExecutionCache:
    """Single-flight, per-problem memo of (patch, script) -> TestRun."""

    def __init__(
        self,
        lease: Callable[[], AbstractContextManager[Sandbox]],
        timeout: float,
        infra_attempts: int = 3,
    ):
        self._lease = lease
        self.timeout = timeout
        self.infra_attempts = infra_attempts
        self._lock = threading.Lock()
        self._results: dict[tuple[str, str], TestRun] = {}
        self._inflight: dict[tuple[str, str], threading.Event] = {}
        self.runs = 0
        self.hits = 0
        self._memo: dict[tuple[Any, ...], Any] = {}
        self._memo_inflight: dict[tuple[Any, ...], threading.Event] = {}

    def run(self, patch: str | None, script: Script) -> TestRun:
        key = (patch_digest(patch), script.digest)
        while True:
            with self._lock:
                if key in self._results:
                    self.hits += 1
                    return self._results[key]
                event = self._inflight.get(key)
                if event is None:
                    event = threading.Event()
                    self._inflight[key] = event
                    break
            event.wait()
        try:
            result = self._run_fresh(patch, script)
            with self._lock:
                self._results[key] = result
                self.runs += 1
            return result
        finally:
            with self._lock:
                self._inflight.pop(key, None)
            event.set()

    def _run_fresh(self, patch: str | None, script: Script) -> TestRun:
        """Run once; when the sandbox itself fails (container killed, engine hiccup), again
        on another sandbox. A sandbox failure is never a result: after the last attempt
        the SandboxError propagates and nothing is cached."""
        for attempt in range(1, self.infra_attempts + 1):
            try:
                with self._lease() as sandbox:
                    return run_script(sandbox, patch, script, self.timeout)
            except SandboxError as e:
                if attempt == self.infra_attempts:
                    raise
                log.warning("sandbox failure (attempt %d), retrying on another: %s", attempt, e)
        raise AssertionError("unreachable")

    def seed(self, patch: str | None, script: Script, result: TestRun) -> None:
        """Reuse a result recorded earlier (e.g. by a trajectory) without running again."""
        with self._lock:
            self._results.setdefault((patch_digest(patch), script.digest), result)

    def lease(self) -> AbstractContextManager[Sandbox]:
        """A clean sandbox from the problem's pool (for work that is not a script run)."""
        return self._lease()

    def memo(self, key: tuple[Any, ...], compute: Callable[[Sandbox], T]) -> T:
        """Single-flight memo for other sandbox work (e.g. a regression-suite run keyed by
        command and patch digest): ``compute`` runs once per key, in a leased sandbox. A
        failure is not cached."""
        while True:
            with self._lock:
                if key in self._memo:
                    self.hits += 1
                    return self._memo[key]
                event = self._memo_inflight.get(key)
                if event is None:
                    event = threading.Event()
                    self._memo_inflight[key] = event
                    break
            event.wait()
        try:
            with self._lease() as sandbox:
                result = compute(sandbox)
            with self._lock:
                self._memo[key] = result
                self.runs += 1
            return result
        finally:
            with self._lock:
                self._memo_inflight.pop(key, None)
            event.set()
