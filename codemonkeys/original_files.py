"""A problem's files as they are at the base commit, read once per path.

Shared by generation (the files an edit is applied to) and selection (the base a candidate's
identity is computed from), so it lives below both.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

from codemonkeys.sandbox.base import Sandbox
from codemonkeys.sandbox.common import SandboxFileNotFound


class OriginalBytes:
    """Original contents of repo files, read once per problem from a host snapshot of the
    repository (``repo_dir``) or from a clean sandbox."""

    def __init__(
        self,
        repo_dir: Path | None,
        lease: Callable[[], AbstractContextManager[Sandbox]] | None,
    ):
        self.repo_dir = Path(repo_dir) if repo_dir is not None else None
        self.lease = lease
        self._lock = threading.Lock()
        self._cache: dict[str, bytes | None] = {}

    def read_bytes(self, path: str) -> bytes | None:
        """The file's bytes at the base commit (None when absent), read once."""
        with self._lock:
            if path in self._cache:
                return self._cache[path]
        data = self._read_bytes(path)
        with self._lock:
            self._cache[path] = data
        return data

    def _read_bytes(self, path: str) -> bytes | None:
        if self.repo_dir is not None:
            f = (self.repo_dir / path).resolve()
            root = self.repo_dir.resolve()
            if root not in f.parents or not f.is_file():
                return None
            return f.read_bytes()
        if self.lease is None:
            return None
        with self.lease() as sandbox:
            try:
                return sandbox.read_file(path)
            except SandboxFileNotFound:
                return None
