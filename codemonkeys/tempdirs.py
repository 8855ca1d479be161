"""Host temporary directories that name their owner, so leftovers of killed runs can be
removed safely.

Every temporary directory codemonkeys makes is ``<tmp>/codemonkeys-<kind>-<pid>-<random>``
(the repository copy of a problem, a solve's exported tree, ...). A run killed with SIGKILL
cannot remove its own; ``codemonkeys clean`` (``clean_temp_dirs``) removes those whose
owner process is gone and never touches one whose owner still runs.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

PREFIX = "codemonkeys-"
_OWNED = re.compile(r"^codemonkeys-[a-z]+-(\d+)-")


def temp_prefix(kind: str) -> str:
    """The name prefix of this process's temporary directories of ``kind``."""
    return f"{PREFIX}{kind}-{os.getpid()}-"


def make_temp_dir(kind: str) -> Path:
    """A new temporary directory owned by this process (the caller removes it)."""
    return Path(tempfile.mkdtemp(prefix=temp_prefix(kind)))


@contextlib.contextmanager
def temp_dir(kind: str) -> Iterator[Path]:
    """``tempfile.TemporaryDirectory`` with the owner's pid in the name."""
    with tempfile.TemporaryDirectory(prefix=temp_prefix(kind)) as tmp:
        yield Path(tmp)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def clean_temp_dirs(root: Path | None = None) -> list[Path]:
    """Remove the temporary directories whose owner process is gone; returns them.
    Directories without an owner pid in their name (or of a live owner) are kept."""
    root = Path(root or tempfile.gettempdir())
    removed = []
    for path in sorted(root.glob(f"{PREFIX}*")):
        match = _OWNED.match(path.name)
        if match is None or not path.is_dir() or path.is_symlink():
            continue
        if _alive(int(match.group(1))):
            continue
        shutil.rmtree(path, ignore_errors=True)
        if not path.exists():
            removed.append(path)
    return removed
