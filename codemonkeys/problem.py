"""A problem to solve: an issue against a repository at a base commit.

Gold fields (SWE-bench's reference patch and tests) live in a separate ``Gold`` record that
no prompt-building code receives; only metrics and evaluation read it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from codemonkeys.diffs import touched_files


class Problem(BaseModel):
    id: str
    repo: str
    """``owner/name`` for GitHub/SWE-bench problems, a label for local repositories."""
    issue: str
    base_commit: str | None = None
    image: str | None = None
    """Docker image to run in. Without ``repo_path`` it already holds the repository at
    ``workdir`` (SWE-bench images: /testbed); default: the config's generic sandbox image."""
    repo_path: Path | None = None
    """Local git checkout the sandbox copies in at ``base_commit`` (solve mode)."""
    subdir: str | None = None
    """With ``repo_path``: the project is this subdirectory of the checkout (monorepos)."""
    workdir: str = "/repo"
    """Where the repository lives inside the sandbox."""
    env_setup: str = ""
    """Shell snippet run before every command (e.g. activating the testbed conda env)."""
    test_language: Literal["python", "shell"] = "python"
    version: str | None = None

    @property
    def safe_id(self) -> str:
        return safe_name(self.id)


class Gold(BaseModel):
    """Reference data, for metrics and evaluation only. Never part of a prompt."""

    patch: str = ""
    test_patch: str = ""
    fail_to_pass: list[str] = Field(default_factory=list)
    pass_to_pass: list[str] = Field(default_factory=list)
    errors: list[str] = Field(default_factory=list)
    """Malformed gold fields (left empty here): the problem is still solved, only the
    metrics that need them are unavailable."""

    def edited_files(self) -> list[str]:
        return touched_files(self.patch)


def safe_name(text: str) -> str:
    """A file-system-safe, still readable name."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("._") or "problem"
