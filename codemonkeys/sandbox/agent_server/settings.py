"""The agent's settings (``agent.python_agent_argv``) and its small file helpers."""

from __future__ import annotations

import json
import os
from typing import Any

SCRIPT_DIR = "/tmp/codemonkeys"
"""Root's, 755 on the scratch tmpfs: the run's script file lives here."""


class Settings:
    def __init__(self, raw: str) -> None:
        given: dict[str, Any] = json.loads(raw)
        self.uid: int = given["uid"]
        self.workdir: str = given["workdir"].rstrip("/") or "/"
        self.disk: int = given["disk"]
        self.agent_dir: str = given["agent_dir"]
        self.touched_list: str = given["touched_list"]
        self.touched_state: str = given["touched_state"]
        self.max_touched: int = given["max_touched"]
        self.disk_note: str = given["disk_note"]
        self.file_note: str = given["file_note"]
        self.whole_mark: bytes = given["whole_mark"].encode()
        self.method_tag: bytes = given["method_tag"].encode()
        self.prelude_failed: int = given["prelude_failed"]
        git: dict[str, Any] = given["git"]
        self.git_args: list[str] = git["args"]
        self.git_env = {k: v for k, v in os.environ.items() if k not in git["unset"]}
        self.git_env.update(git["env"])


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def put(path: str, data: bytes, mode: int = 0o600) -> None:
    """``path`` holds ``data`` (never written through a symlink)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, mode)
    try:
        write_all(fd, data)
    finally:
        os.close(fd)


def get(path: str) -> bytes:
    """What ``path`` holds; empty when it cannot be read."""
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return b""
