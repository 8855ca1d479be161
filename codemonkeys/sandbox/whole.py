"""A command's whole stdout, for output the product parses (listings, greps, reports).

``Sandbox.run`` caps its output for the model's eyes (``max_output_chars``: head + tail);
parsing a capped listing silently loses files. ``run_whole`` sends stdout to a file in the
sandbox's checkout (``OUT_DIR``: the one place a script's unprivileged user may write that
the archive API can read; untracked, so no listing or grep of tracked files sees it, and
removed after reading) and reads the file back with ``read_file`` (the archive API or
an agent ``cat`` in the Docker sandbox, a host read in the local one), so nothing is cut.
It works on any ``Sandbox`` (Docker and local alike): the backends need nothing new.
"""

from __future__ import annotations

import shlex
import uuid

from pydantic import BaseModel

from codemonkeys.sandbox.base import Sandbox, SandboxError

_STDERR_KEEP = 2000
OUT_DIR = ".codemonkeys-out"


class WholeRun(BaseModel):
    exit_code: int | None
    """None when the command timed out."""
    stdout: bytes
    """Everything the command wrote to stdout."""
    stderr: str = ""
    """The (capped) rest of the output: stderr, for error messages only."""
    timed_out: bool = False


def run_whole(sandbox: Sandbox, cmd: str, timeout: float = 120.0) -> WholeRun:
    """Run ``cmd`` from the repository root and return its whole stdout. Raises
    ``SandboxError`` when the output file cannot be read back (never a short answer)."""
    out = f"{OUT_DIR}/whole-{uuid.uuid4().hex[:12]}.out"
    qout = shlex.quote(out)
    res = sandbox.run(f"mkdir -p {OUT_DIR} && ( {cmd}\n) > {qout}", timeout=timeout)
    try:
        data = sandbox.read_file(f"{sandbox.workdir.rstrip('/')}/{out}")
    except SandboxError as e:
        raise SandboxError(f"cannot read the output of {cmd[:80]!r}: {e}") from e
    finally:
        sandbox.run(f"rm -f {qout}; rmdir {OUT_DIR} 2>/dev/null; true", timeout=60)
    return WholeRun(
        exit_code=res.exit_code,
        stdout=data,
        stderr=res.output[-_STDERR_KEEP:],
        timed_out=res.timed_out,
    )


def null_separated(data: bytes) -> list[str]:
    """``-z`` output (git ls-files -z, git grep -lz) as paths."""
    return [p.decode("utf-8", "surrogateescape") for p in data.split(b"\0") if p]
