"""The sandbox protocol: where every model-written script runs.

A sandbox holds one checkout of the problem's repository at its base commit. ``reset()``
returns it to exactly that tree, so one warm sandbox serves many (patch, test) runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

from pydantic import BaseModel

from codemonkeys.errors import InfrastructureError


class ExecResult(BaseModel):
    exit_code: int | None
    """None when the process was killed on timeout."""
    output: str
    """stdout and stderr interleaved; head + marker + tail when over the limit."""
    timed_out: bool = False
    seconds: float = 0.0
    truncated: bool = False


class PatchResult(BaseModel):
    ok: bool
    method: str = ""
    """Which strategy applied it: git-apply, git-apply-3way, patch-fuzz."""
    error: str = ""
    """The exact error text of every strategy tried, when none applied."""


class SandboxError(InfrastructureError, RuntimeError):
    """The sandbox itself failed (image missing, engine gone); not a script failure."""


@runtime_checkable
class Sandbox(Protocol):
    workdir: str

    def run(self, cmd: str, timeout: float | None = None) -> ExecResult: ...

    def write_file(self, path: str, content: str | bytes) -> None: ...

    def read_file(self, path: str) -> bytes: ...

    def apply_patch(self, patch: str) -> PatchResult: ...

    def diff(self) -> str: ...

    def export_repo(self, dest: Path) -> list[str]:
        """Write the files tracked at the base commit into ``dest`` (a host directory) and
        return their repo-relative paths, sorted. Used by the context stage to read every
        file without one exec per file."""
        ...

    def reset(self) -> None: ...

    def close(self) -> None: ...
