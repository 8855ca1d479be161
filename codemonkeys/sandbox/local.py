"""LocalSandbox: a temporary copy of the repository and plain host processes.

For users without Docker, opt-in only (``sandbox.kind = "local"``): model-written code runs
on the host with the user's rights and no isolation, which is why creating one logs a
warning. Commands still get their own process group (killed as a whole on timeout), the
same output cap, and the same git-based patch/diff/reset as the Docker sandbox.

Our own scripts address ``/tmp/codemonkeys/...`` (as inside a container); here that prefix
is mapped to a private directory per sandbox, in paths and in command text, so parallel
local sandboxes never share or delete each other's files.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shlex
import shutil
import signal
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

from codemonkeys.sandbox.base import SandboxError
from codemonkeys.sandbox.common import SCRIPT_TMP, SandboxFileNotFound, ShellGitSandbox
from codemonkeys.sandbox.output import BoundedOutput
from codemonkeys.sandbox.secret_copy import repo_copy
from codemonkeys.sandbox.spec import ENV_ALLOW, SandboxSpec
from codemonkeys.tempdirs import make_temp_dir

log = logging.getLogger(__name__)

HOST_WARNING = (
    "LocalSandbox: model-written code will run ON THIS HOST without isolation "
    "(no container, no network or resource limits). Use the Docker sandbox unless you trust it."
)


class LocalSandbox(ShellGitSandbox):
    def __init__(self, spec: SandboxSpec, *, repo_tar: bytes | None = None):
        if spec.repo_path is None:
            raise SandboxError(
                "the local sandbox needs a local repository (repo_path); images need Docker"
            )
        log.warning(HOST_WARNING)
        self.spec = spec
        self.env_setup = spec.env_setup
        self.max_output_chars = spec.max_output_chars
        self.default_timeout = spec.default_timeout
        self.keep_untracked = []
        self.root = make_temp_dir("local")
        self.workdir = str(self.root / "repo")
        self.tmp_dir = str(self.root / "tmp")
        self.private_dir = str(self.root / "private")
        self.home = self.root / "home"
        self.restore_git_config = True
        self._closed = False
        try:
            import io
            import tarfile

            data = repo_tar if repo_tar is not None else repo_copy(spec).tar
            with tarfile.open(fileobj=io.BytesIO(data)) as tar:
                tar.extractall(self.workdir, filter="data")
            self._init_copied_repo()
            self._save_git_config()
        except BaseException:
            self.close()
            raise

    # -- path mapping ------------------------------------------------------------------------
    def _map(self, path: str) -> Path:
        if path == SCRIPT_TMP or path.startswith(SCRIPT_TMP + "/"):
            return Path(self.tmp_dir + path[len(SCRIPT_TMP) :])
        if path.startswith(self.root.as_posix()):
            return Path(path)
        if os.path.isabs(path):
            raise SandboxError(
                f"the local sandbox only writes inside its own directories, not {path}"
            )
        p = (Path(self.workdir) / path).resolve()
        if not p.is_relative_to(Path(self.workdir).resolve()):
            raise SandboxError(f"{path} is outside the repository")
        return p

    def _rewrite(self, text: str) -> str:
        return re.sub(re.escape(SCRIPT_TMP) + r"(?![\w.-])", self.tmp_dir, text)

    # -- primitives ----------------------------------------------------------------------------
    def _env(self) -> dict[str, str]:
        """An allow-list of the host's environment (never its API keys or tokens), a
        scratch HOME and TMPDIR."""
        self.home.mkdir(parents=True, exist_ok=True)
        Path(self.tmp_dir).mkdir(parents=True, exist_ok=True)
        names = [*ENV_ALLOW, *self.spec.pass_env]
        return {
            **{k: os.environ[k] for k in names if k in os.environ},
            "HOME": str(self.home),
            "TMPDIR": self.tmp_dir,
            "PYTHONUNBUFFERED": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
            "CODEMONKEYS_TMP": self.tmp_dir,
        }

    def _reset_extra(self) -> str:
        return f"rm -rf {shlex.quote(self.tmp_dir)} {shlex.quote(str(self.home))}\n"

    def _sh(self, script: str, timeout: float | None = 300.0) -> tuple[int | None, bytes, bytes]:
        try:
            proc = subprocess.run(
                ["bash", "-c", script],
                capture_output=True,
                timeout=timeout,
                env=self._env(),
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired as e:
            return None, e.stdout or b"", e.stderr or b""
        return proc.returncode, proc.stdout, proc.stderr

    def _sh_stream(self, script: str) -> Iterator[bytes]:
        proc = subprocess.Popen(
            ["bash", "-c", script],
            stdout=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            env=self._env(),
        )
        assert proc.stdout is not None
        with proc:
            while chunk := proc.stdout.read(1 << 16):
                yield chunk
        if proc.returncode != 0:
            raise SandboxError(f"streaming command failed with exit {proc.returncode}")

    def _run_capture(
        self, script: str, timeout: float, sink: BoundedOutput
    ) -> tuple[int | None, bool]:
        proc = subprocess.Popen(
            ["bash", "-c", "exec 2>&1\n" + self._rewrite(script)],
            stdout=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            env=self._env(),
            start_new_session=True,  # own process group: killed as a whole
        )
        assert proc.stdout is not None
        fd = proc.stdout.fileno()

        def pump() -> None:
            while chunk := os.read(fd, 1 << 16):
                sink.feed(chunk)

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        timed_out = False
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
        finally:
            # Kill the group on timeout, and leftovers (background jobs) after a normal exit.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        reader.join(timeout=5)
        proc.stdout.close()
        return (None if timed_out else proc.returncode), timed_out

    def write_file(self, path: str, content: str | bytes) -> None:
        data = (
            content.encode("utf-8", "surrogateescape")
            if isinstance(content, str)
            else bytes(content)
        )
        target = self._map(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)

    def read_file(self, path: str) -> bytes:
        target = self._map(path)
        try:
            return target.read_bytes()
        except FileNotFoundError as e:
            raise SandboxFileNotFound(f"{path} does not exist in the sandbox") from e

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> LocalSandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
