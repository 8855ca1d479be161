"""Reading a git commit's tree as files without ``git archive``.

``git archive`` honours ``export-ignore`` attributes, so a repository that marks e.g. its
tests export-ignore would silently lose them. We use ``git ls-tree -r -z`` (modes, paths)
plus ``git cat-file --batch`` (contents, one stream) instead: every tracked blob and
symlink, nothing skipped, no exec per file. Submodules (gitlinks) have no content here and
are skipped.
"""

from __future__ import annotations

import io
import logging
import os
import subprocess
import tarfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from codemonkeys.sandbox.base import SandboxError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TreeEntry:
    mode: str
    kind: str  # blob / commit (submodule) / tree
    sha: str
    path: str  # repo-relative, '/'-separated

    @property
    def is_symlink(self) -> bool:
        return self.mode == "120000"

    @property
    def is_executable(self) -> bool:
        return self.mode == "100755"


def parse_ls_tree(raw: bytes) -> list[TreeEntry]:
    """Parse ``git ls-tree -r -z`` output: ``<mode> SP <type> SP <sha> TAB <path> NUL``."""
    entries = []
    for rec in raw.split(b"\0"):
        if not rec:
            continue
        meta, _, path = rec.partition(b"\t")
        mode, kind, sha = meta.decode().split()
        entries.append(TreeEntry(mode, kind, sha, path.decode("utf-8", "surrogateescape")))
    return entries


def blob_entries(entries: Iterable[TreeEntry]) -> list[TreeEntry]:
    return [e for e in entries if e.kind == "blob"]


class ChunkReader:
    """A minimal buffered reader over an iterator of byte chunks (a Docker exec stream)."""

    def __init__(self, chunks: Iterable[bytes]):
        self._it: Iterator[bytes] = iter(chunks)
        self._buf = bytearray()
        self._eof = False

    def _fill(self) -> bool:
        if self._eof:
            return False
        for chunk in self._it:
            if chunk:
                self._buf += chunk
                return True
        self._eof = True
        return False

    def readline(self) -> bytes:
        while True:
            i = self._buf.find(b"\n")
            if i >= 0:
                line = bytes(self._buf[: i + 1])
                del self._buf[: i + 1]
                return line
            if not self._fill():
                line = bytes(self._buf)
                self._buf.clear()
                return line

    def read_exact(self, n: int) -> bytes:
        while len(self._buf) < n:
            if not self._fill():
                raise SandboxError(f"git object stream ended early ({len(self._buf)}/{n} bytes)")
        data = bytes(self._buf[:n])
        del self._buf[:n]
        return data

    def drain(self) -> None:
        while self._fill():
            self._buf.clear()


def iter_cat_file_batch(reader: ChunkReader, count: int) -> Iterator[tuple[str, bytes | None]]:
    """Yield ``(sha, content)`` for ``count`` answers of ``git cat-file --batch``
    (content None for a missing object)."""
    for _ in range(count):
        header = reader.readline()
        if not header:
            raise SandboxError("git cat-file stream ended early")
        parts = header.decode("ascii", "replace").split()
        if len(parts) == 2 and parts[1] == "missing":
            yield parts[0], None
            continue
        sha, _kind, size = parts[0], parts[1], int(parts[2])
        data = reader.read_exact(size)
        reader.read_exact(1)  # trailing LF
        yield sha, data


def write_blobs(
    entries: list[TreeEntry], contents: Iterator[tuple[str, bytes | None]], dest: Path
) -> list[str]:
    """Write blobs (and symlinks) under ``dest``; returns the paths written. Symlinks whose
    target would leave ``dest`` and paths with '..' are skipped, never followed."""
    dest = dest.resolve()
    written: list[str] = []
    for entry, (sha, data) in zip(entries, contents, strict=True):
        if data is None or sha != entry.sha:
            continue
        rel = PurePosixPath(entry.path)
        if rel.is_absolute() or ".." in rel.parts:
            continue
        target = dest.joinpath(*rel.parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.parent.resolve().is_relative_to(dest):
            continue  # a symlinked parent directory pointing outside: never write through it
        if target.is_symlink() or target.exists():
            target.unlink()
        if entry.is_symlink:
            link = os.fsdecode(data)
            resolved = (target.parent / link).resolve()
            if not resolved.is_relative_to(dest):
                continue
            os.symlink(link, target)
        else:
            target.write_bytes(data)
            if entry.is_executable:
                target.chmod(0o755)
        written.append(entry.path)
    return sorted(written)


def _git(repo: Path, *args: str, stdin: bytes | None = None) -> bytes:
    proc = subprocess.run(["git", "-C", str(repo), *args], input=stdin, capture_output=True)
    if proc.returncode != 0:
        msg = proc.stderr.decode("utf-8", "replace").strip()
        raise SandboxError(f"git {' '.join(args[:3])} failed in {repo}: {msg}")
    return proc.stdout


def resolve_commit(repo: Path, commit: str | None) -> str:
    if not (repo / ".git").exists() and not _is_git_dir(repo):
        raise SandboxError(f"{repo} is not a git repository (repo_path must be a git checkout)")
    return _git(repo, "rev-parse", "--verify", f"{commit or 'HEAD'}^{{commit}}").decode().strip()


def _is_git_dir(repo: Path) -> bool:
    proc = subprocess.run(["git", "-C", str(repo), "rev-parse", "--git-dir"], capture_output=True)
    return proc.returncode == 0


def _host_blobs(
    repo: Path, commit: str | None, subdir: str | None
) -> tuple[list[TreeEntry], Iterator[tuple[str, bytes | None]]]:
    """The blob entries of ``commit`` (below ``subdir``, paths relative to it) and their
    contents, read with one ``ls-tree`` and one ``cat-file --batch``."""
    sha = resolve_commit(repo, commit)
    treeish = f"{sha}:{subdir.strip('/')}" if subdir else sha
    try:
        raw = _git(repo, "ls-tree", "-r", "-z", treeish)
    except SandboxError as e:
        raise SandboxError(f"subdir {subdir!r} not found at {sha[:12]} in {repo}: {e}") from e
    entries = _materialise_escaping_symlinks(repo, sha, subdir, blob_entries(parse_ls_tree(raw)))
    if not entries:
        return [], iter(())
    batch = _git(repo, "cat-file", "--batch", stdin="".join(f"{e.sha}\n" for e in entries).encode())
    return entries, iter_cat_file_batch(ChunkReader([batch]), len(entries))


def _materialise_escaping_symlinks(
    repo: Path, commit: str, subdir: str | None, entries: list[TreeEntry]
) -> list[TreeEntry]:
    """A symlink whose target leaves the exported root (a monorepo's ``pkg/LICENSE ->
    ../LICENSE`` exported with subdir ``pkg``) cannot be copied into a container (Docker:
    "invalid symlink"). When it names a regular file tracked elsewhere in the repository
    at ``commit``, that file's content takes its place; otherwise (absolute target, a
    directory, another symlink, nothing) it is left out. Either way a warning names it."""
    root = PurePosixPath(subdir.strip("/")) if subdir else PurePosixPath()
    symlinks = [e for e in entries if e.is_symlink]
    if not symlinks:
        return entries
    targets = _git(
        repo, "cat-file", "--batch", stdin="".join(f"{e.sha}\n" for e in symlinks).encode()
    )
    links = dict(iter_cat_file_batch(ChunkReader([targets]), len(symlinks)))
    out: list[TreeEntry] = []
    for entry in entries:
        link = links.get(entry.sha) if entry.is_symlink else None
        if link is None:
            out.append(entry)
            continue
        target = os.fsdecode(link)
        inside = os.path.normpath(str(PurePosixPath(entry.path).parent / target))
        if not target.startswith("/") and inside != ".." and not inside.startswith("../"):
            out.append(entry)  # stays inside the exported root
            continue
        replacement = None
        repo_path = os.path.normpath(str(root / PurePosixPath(entry.path).parent / target))
        if not target.startswith("/") and not repo_path.startswith(".."):
            listed = parse_ls_tree(_git(repo, "ls-tree", "-z", commit, "--", repo_path))
            if len(listed) == 1 and listed[0].kind == "blob" and not listed[0].is_symlink:
                replacement = TreeEntry(listed[0].mode, "blob", listed[0].sha, entry.path)
        if replacement is not None:
            log.warning(
                "%s is a symlink to %s, outside the exported directory: copied as a file",
                entry.path,
                target,
            )
            out.append(replacement)
        else:
            log.warning(
                "%s is a symlink to %s, outside the exported directory and not a tracked "
                "file: left out",
                entry.path,
                target,
            )
    return out


def export_host_tree(
    repo: Path, commit: str | None, dest: Path, subdir: str | None = None
) -> list[str]:
    """Write every file tracked at ``commit`` (below ``subdir``) of a host repository into
    ``dest``; returns the paths written (relative to ``subdir``), sorted."""
    entries, contents = _host_blobs(repo, commit, subdir)
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    return write_blobs(entries, contents, dest)


def host_blobs(
    repo: Path, commit: str | None = None, subdir: str | None = None
) -> list[tuple[TreeEntry, bytes]]:
    """Every tracked file (and symlink) of ``repo`` at ``commit`` (or of ``subdir`` of it)
    with its content, paths relative to that root."""
    entries, contents = _host_blobs(repo, commit, subdir)
    return [
        (entry, data)
        for entry, (_sha, data) in zip(entries, contents, strict=True)
        if data is not None
    ]


def tar_of(blobs: list[tuple[TreeEntry, bytes]]) -> bytes:
    """A tar (in memory) of ``blobs``: files with their mode, symlinks as links."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for entry, data in blobs:
            info = tarfile.TarInfo(entry.path)
            info.mtime = 0
            if entry.is_symlink:
                info.type = tarfile.SYMTYPE
                info.linkname = os.fsdecode(data)
                tar.addfile(info)
            else:
                info.size = len(data)
                info.mode = 0o755 if entry.is_executable else 0o644
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def host_tree_tar(repo: Path, commit: str | None = None, subdir: str | None = None) -> bytes:
    """A tar (in memory) of every tracked file of ``repo`` at ``commit`` (or of ``subdir``
    of it), paths relative to that root, as they are (a sandbox gets
    ``secret_copy.repo_copy`` instead: secrets replaced)."""
    return tar_of(host_blobs(repo, commit, subdir))
