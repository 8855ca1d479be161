"""A user's repository as it enters a sandbox: secrets left out, and redacted from what
comes back.

Model-written scripts print what they find (a reproduction test that shows
``open('.env').read()`` is ordinary exploring), and script output goes into every later
prompt, the trajectory records, the prompt log and, with a provider, its API. So secrets of
a *local* repository (the ``solve`` job) never reach a sandbox as they are:

- ``repo_copy``: the one copy of the repository every sandbox of a problem gets. A file
  that is a secret as a whole (``secret_check``: its name, an rc file with credentials) is
  replaced by a placeholder of the same name, so code that opens it still finds a file;
  secret values found in other files (a Stripe key in a ``.py``, an ``api_key:`` in a YAML
  file, a private key inside a document) are replaced by ``REDACTED`` wherever they occur.
  ``sandbox.copy_secret_files`` names files that are copied as they are (tests that need
  a real certificate).
- ``RedactingSandbox``: what a pool's lease hands out when the copy knew secret values:
  every text that comes back from the sandbox (script output, files read, patch errors,
  diffs) has those exact values replaced by ``REDACTED``, the one boundary between a
  sandbox and the records and prompts. It catches a file copied as it is and, in the
  local sandbox, a script reading the original checkout by its host path. One compiled
  alternation per text: microseconds for a script's capped output.

A SWE-bench image's repository is public and graded as it stands: it is never copied, so
nothing here touches it (its secret-looking files stay out of the context, as before).
Secrets outside the repository (a host's ``~/.aws``) are the local sandbox's known gap:
it has no isolation (docs/sandbox.md).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codemonkeys.sandbox.base import ExecResult, PatchResult, Sandbox
from codemonkeys.sandbox.gittree import TreeEntry, host_blobs, tar_of
from codemonkeys.sandbox.spec import SandboxSpec
from codemonkeys.secret_check import PLACEHOLDER_TEXT, Redactor, SecretCheck, matches_glob

log = logging.getLogger(__name__)


@dataclass
class RepoCopy:
    tar: bytes
    redactor: Redactor
    replaced: list[str] = field(default_factory=list)
    """Files replaced by a placeholder."""
    masked: list[str] = field(default_factory=list)
    """Files whose secret values were replaced."""
    kept: list[str] = field(default_factory=list)
    """Secret-looking files copied as they are (``sandbox.copy_secret_files``)."""


def repo_copy(spec: SandboxSpec) -> RepoCopy:
    """The repository of ``spec`` (a local one) as a tar for its sandboxes, secrets out."""
    assert spec.repo_path is not None, "only a local repository is copied"
    blobs = host_blobs(spec.repo_path, spec.base_commit, spec.subdir)
    check = SecretCheck(spec.secret_globs)
    found = {
        entry.path: verdict
        for entry, data in blobs
        if not entry.is_symlink and (verdict := check.inspect(entry.path, data)) is not None
    }
    copy = RepoCopy(b"", Redactor(v for f in found.values() for v in f.values))
    out: list[tuple[TreeEntry, bytes]] = []
    for entry, data in blobs:
        out.append((entry, _copied(entry, data, copy, found, spec.copy_secret_files)))
    copy.tar = tar_of(out)
    if copy.replaced or copy.masked:
        log.warning(
            "%d file(s) that look like secrets are replaced by a placeholder in the sandbox "
            "(%s) and secret values masked in %d other(s) (%s); set sandbox.copy_secret_files "
            "for tests that need them",
            len(copy.replaced),
            ", ".join(copy.replaced[:10]),
            len(copy.masked),
            ", ".join(copy.masked[:10]),
        )
    return copy


def _copied(
    entry: TreeEntry, data: bytes, copy: RepoCopy, found: dict[str, Any], keep: list[str]
) -> bytes:
    """What of one file goes into the sandbox (and the bookkeeping of ``copy``)."""
    if entry.is_symlink:
        return data
    if keep and matches_glob(entry.path, keep):
        if entry.path in found:
            copy.kept.append(entry.path)
        return data
    verdict = found.get(entry.path)
    if verdict is not None and verdict.whole:
        copy.replaced.append(entry.path)
        return PLACEHOLDER_TEXT.encode()
    if not copy.redactor or b"\0" in data[:8192]:
        return data
    masked = copy.redactor.data(data)
    if masked != data:
        copy.masked.append(entry.path)
    return masked


class RedactingSandbox:
    """A leased sandbox whose every returned text has the copy's secret values redacted."""

    def __init__(self, inner: Sandbox, redactor: Redactor):
        self.inner = inner
        self.redactor = redactor
        self.workdir = inner.workdir

    def run(self, cmd: str, timeout: float | None = None) -> ExecResult:
        res = self.inner.run(cmd, timeout)
        return res.model_copy(update={"output": self.redactor.text(res.output)})

    def write_file(self, path: str, content: str | bytes) -> None:
        self.inner.write_file(path, content)

    def read_file(self, path: str) -> bytes:
        return self.redactor.data(self.inner.read_file(path))

    def apply_patch(self, patch: str) -> PatchResult:
        res = self.inner.apply_patch(patch)
        return res.model_copy(update={"error": self.redactor.text(res.error)})

    def diff(self) -> str:
        return self.redactor.text(self.inner.diff())

    def export_repo(self, dest: Path) -> list[str]:
        return self.inner.export_repo(dest)

    def reset(self) -> None:
        self.inner.reset()

    def close(self) -> None:
        self.inner.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)
