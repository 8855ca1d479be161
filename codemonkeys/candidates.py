"""Candidate patches and tests: what generation and ensembling hand to selection.

Identity (``candidate_id``, the one key for merging candidates, ensembling other systems'
patches and labelling evaluation results):

- where the base files are at hand (``base``) and the patch applies to them, a patch is
  the files it produces: the same change written by another tool (other context lines, a
  hunk split in two, another header style) is one candidate;
- otherwise its text, normalised only in what carries no meaning: line endings, trailing
  whitespace, ``index`` lines and hunk offsets. Indentation and inner spaces are kept:
  in Python they are the program.
"""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel, Field

from codemonkeys.execution import Script
from codemonkeys.sandbox.patching import check_patch_paths

log = logging.getLogger(__name__)

BaseFiles = Callable[[str], bytes | None]
"""The base-commit bytes of a repository file (a repo-relative path); None when absent."""


class Candidate(BaseModel):
    id: str
    """Stable, short: ``c<digest>`` (``candidate_id``)."""
    patch: str
    sources: list[str] = Field(default_factory=list)
    """Who proposed it: ``codemonkeys:traj-3``, ``<system name>`` for ensembled predictions."""

    @classmethod
    def from_patch(cls, patch: str, source: str, base: BaseFiles | None = None) -> Candidate:
        return cls(id=candidate_id(patch, base), patch=patch, sources=[source])


class CandidateSet(BaseModel):
    """Distinct candidates and distinct tests for one problem."""

    candidates: list[Candidate] = Field(default_factory=list)
    tests: list[Script] = Field(default_factory=list)

    def add_patch(self, patch: str, source: str, base: BaseFiles | None = None) -> Candidate | None:
        """Add unless empty; a patch with the id of one already here (``candidate_id``
        with the same ``base``) adds its source to that candidate."""
        return self.add_sources(patch, [source], base)

    def add_sources(
        self, patch: str, sources: list[str], base: BaseFiles | None = None
    ) -> Candidate | None:
        """``add_patch`` for a patch proposed by several sources (identified once)."""
        if not patch or not patch.strip():
            return None
        cid = candidate_id(patch, base)
        cand = next((c for c in self.candidates if c.id == cid), None)
        if cand is None:
            cand = Candidate(id=cid, patch=patch)
            self.candidates.append(cand)
        cand.sources += [s for s in dict.fromkeys(sources) if s not in cand.sources]
        return cand

    def add_test(self, script: Script) -> None:
        key = script_identity(script)
        if script.content.strip() and all(script_identity(t) != key for t in self.tests):
            self.tests.append(script)


def _lines(text: str) -> list[str]:
    """Lines without line-ending or trailing-whitespace differences."""
    return [line.rstrip() for line in text.replace("\r\n", "\n").split("\n")]


def normalize_patch(patch: str) -> str:
    """A patch's text identity: line endings, trailing whitespace, ``index`` lines and
    hunk offsets (``@@ -3,7 +3,8 @@ ...`` -> ``@@``) normalised; nothing else."""
    lines = []
    for line in _lines(patch):
        if line.startswith("index "):
            continue
        if line.startswith("@@"):
            line = "@@"
        lines.append(line)
    return "\n".join(lines).strip("\n")


def script_identity(script: Script) -> str:
    """A test's identity for dedupe: its language and its text up to line endings and
    trailing whitespace."""
    return script.language + "\0" + "\n".join(_lines(script.content)).strip("\n")


def _apply_in(root: Path, patch: str) -> bool:
    """Apply ``patch`` to the files under ``root`` (not a git repository): as written;
    then with line endings and trailing whitespace normalised (the identity ignores them)
    and whitespace in context lines ignored; then with fuzz, like the sandbox."""
    env = {**os.environ, "GIT_CEILING_DIRECTORIES": str(root.parent)}
    as_written = patch if patch.endswith("\n") else patch + "\n"
    normalised = "\n".join(_lines(patch)).rstrip("\n") + "\n"
    attempts = (
        (["git", "apply", "--whitespace=nowarn", "-"], as_written),
        (["git", "apply", "--ignore-whitespace", "--whitespace=nowarn", "-"], normalised),
        (["patch", "--batch", "--forward", "--fuzz=3", "-p1", "-r", "-"], as_written),
    )
    for cmd, text in attempts:
        try:
            proc = subprocess.run(
                cmd,
                cwd=root,
                input=text.encode("utf-8", "surrogateescape"),
                capture_output=True,
                env=env,
            )
        except OSError:  # the tool is not installed
            continue
        if proc.returncode == 0:
            return True
    return False


def produced_files(patch: str, base: BaseFiles) -> dict[str, bytes | None] | None:
    """The files ``patch`` produces from the base: repo path -> new bytes (None: deleted),
    only files whose content changes. None when the patch does not apply (or names an
    unsafe path)."""
    paths, refusal = check_patch_paths(patch)
    if refusal or not paths:
        return None
    try:
        originals = {p: base(p) for p in paths}
    except Exception as e:  # an unreadable base: identify by text
        log.debug("base files for a patch identity unreadable: %s", e)
        return None
    with tempfile.TemporaryDirectory(prefix="codemonkeys-identity-") as tmp:
        root = Path(tmp) / "repo"
        root.mkdir()
        for p, data in originals.items():
            if data is not None:
                (root / p).parent.mkdir(parents=True, exist_ok=True)
                (root / p).write_bytes(data)
        if not _apply_in(root, patch):
            return None
        produced = {}
        for p in paths:
            f = root / p
            new = f.read_bytes() if f.is_file() else None
            if new != originals[p]:
                produced[p] = new
    return produced


def _files_digest(files: dict[str, bytes | None]) -> str:
    """Contents compared like patch text: line endings and trailing whitespace aside."""
    h = hashlib.sha256()
    for path in sorted(files):
        data = files[path]
        h.update(path.encode("utf-8", "surrogateescape") + b"\0")
        if data is None:
            h.update(b"deleted\n")
            continue
        text = data.decode("utf-8", "surrogateescape")
        h.update("\n".join(_lines(text)).encode("utf-8", "surrogateescape") + b"\n")
    return h.hexdigest()


def candidate_id(patch: str, base: BaseFiles | None = None) -> str:
    """``c`` + 8 hex digits: of the files the patch produces when ``base`` is given and
    the patch applies to it, else of ``normalize_patch(patch)``."""
    if base is not None:
        files = produced_files(patch, base)
        if files is not None:
            return "c" + _files_digest(files)[:8]
    return "c" + hashlib.sha256(normalize_patch(patch).encode()).hexdigest()[:8]
