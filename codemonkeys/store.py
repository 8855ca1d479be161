"""The run directory: every record a run produces, written so a killed run resumes.

Layout (``runs/<run>/``)::

    config.json                 effective config of the last invocation
    calls.jsonl                 one line per model call (usage, cost, response; never keys)
    status.json                 run status (finished / budget_exhausted / interrupted / failed)
    problems/<id>/problem.json  the problem (no gold fields)
    problems/<id>/<record>.json stage records: {"fingerprint": ..., "data": {...}}
    problems/<id>/prompts.jsonl.gz   the prompts sent for this problem (optional)

JSON records and every file that is rewritten are written atomically (temp file + fsync +
rename). JSON-lines files are appended one whole line per ``write`` call under a lock; a
line cut short by a kill is skipped on read, and a write that fails part-way (disk full) is
cut back so the file holds only whole lines. ``prompts.jsonl.gz`` is a series of gzip
members, one per line, compressed (fast level) before the lock is taken; the reader keeps
every complete member and skips one cut short by a kill, even with later members after it.

A full disk (ENOSPC) raises ``DiskFull`` with what to do, sets ``RunStore.disk_full`` and
frees a small reserve file so the run can still record its status. A record whose
fingerprint differs from the current config's is moved to ``problems/<id>/stale/`` with a
warning and recomputed, never silently reused.
"""

from __future__ import annotations

import contextlib
import errno
import gzip
import json
import logging
import os
import tempfile
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel

from codemonkeys.errors import CodemonkeysError
from codemonkeys.problem import safe_name
from codemonkeys.records import Record, read_record_data

log = logging.getLogger(__name__)

T = TypeVar("T", bound=BaseModel)


PROMPTS_FILE = "prompts.jsonl.gz"
PROMPTS_GZIP_LEVEL = 1
"""Fast: the prompt log is written on every model call and read only for audits."""
GZIP_MAGIC = b"\x1f\x8b\x08"
RESERVE_FILE = ".space-reserve"
RESERVE_BYTES = 256 * 1024
"""Freed on the first ENOSPC so the run can still write its status and results."""


class DiskFull(CodemonkeysError, OSError):
    """No space left where the run writes; nothing already written is damaged."""

    exit_code = 4  # pipeline.EXIT_CODES["disk_full"]

    def __init__(self, path: Path, cause: OSError):
        super().__init__(
            cause.errno,
            f"no space left on the device holding {path} ({cause.strerror}); the run stops. "
            "Records written so far are intact: free some space and rerun the same command "
            "to resume",
        )
        self.path = path

    def __str__(self) -> str:
        return str(self.strerror)


def disk_full_error(root: Path) -> DiskFull:
    """The error a job ends with after its store ran out of space."""
    return DiskFull(root, OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)))


def _is_disk_full(e: OSError) -> bool:
    return e.errno in (errno.ENOSPC, errno.EDQUOT)


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``path`` whole or not at all: temp file + fsync + rename (a full disk leaves
    the old contents in place and raises ``DiskFull``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(e, OSError) and _is_disk_full(e) and not isinstance(e, DiskFull):
            raise DiskFull(path, e) from e
        raise


def append_bytes(path: Path, data: bytes) -> int:
    """Append ``data`` with one ``O_APPEND`` descriptor; returns the offset it starts at.
    A write that fails part-way (disk full) is cut back, so the file never ends in a
    fragment written by us. Callers serialise appends to one file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        start = os.fstat(fd).st_size
        view = memoryview(data)
        written = 0
        try:
            while written < len(data):
                written += os.write(fd, view[written:])
        except OSError as e:
            if written:
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, start)
            if _is_disk_full(e):
                raise DiskFull(path, e) from e
            raise
        return start
    finally:
        os.close(fd)


def gzip_members(data: bytes) -> Iterator[bytes]:
    """The decompressed contents of each complete gzip member of ``data``. A member cut
    short by a kill (or damaged) is skipped and reading goes on at the next member."""
    view = memoryview(data)
    pos, end = 0, len(data)
    while pos < end:
        start = data.find(GZIP_MAGIC, pos)
        if start < 0:
            return
        d = zlib.decompressobj(wbits=31)
        parts: list[bytes] = []
        cur = start
        try:
            while cur < end and not d.eof:
                chunk = view[cur : cur + 65536]
                parts.append(d.decompress(chunk))
                cur += len(chunk)
        except zlib.error:
            pass
        if not d.eof:
            pos = start + 1  # a cut or damaged member: look for the next one
            continue
        yield b"".join(parts)
        pos = cur - len(d.unused_data)


def json_text(data: Any, *, indent: int | None = None) -> str:
    """``data`` as JSON that always encodes to UTF-8: readable non-ASCII text as is, but a
    value holding a lone surrogate (``"\\udcff"``: some JSON APIs return them, and bytes
    decoded with ``surrogateescape`` carry them) is written with ``\\u`` escapes, which
    read back exactly."""
    text = json.dumps(data, indent=indent, ensure_ascii=False, default=str)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = json.dumps(data, indent=indent, ensure_ascii=True, default=str)
    return text


def to_jsonable(data: BaseModel | dict[str, Any] | list[Any]) -> Any:
    if isinstance(data, BaseModel):
        return data.model_dump(mode="json")
    return data


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """Lines of a JSON-lines file; a truncated or corrupt line (a kill mid-write) is skipped."""
    if not path.is_file():
        return
    with path.open("r", encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError:
                log.warning("skipping a corrupt line in %s", path)
                continue
            if isinstance(obj, dict):
                yield obj


def _ends_mid_line(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            f.seek(-1, os.SEEK_END)
            return f.read(1) != b"\n"
    except OSError:  # missing or empty
        return False


class RunLocked(CodemonkeysError, RuntimeError):
    """Another process holds the run directory; the message names it."""


class RunLock:
    """An exclusive lock on a run directory (``fcntl.flock`` on ``<run>/.lock``), so two
    invocations never work on (and pay for) the same run at once. The holder's pid, host
    and command are written in the file for the message the second one prints. The kernel
    drops the lock when the holder exits, however it exits (SIGKILL included)."""

    FILE = ".lock"

    def __init__(self, root: Path):
        self.path = Path(root) / self.FILE
        self._file: Any = None

    def acquire(self) -> RunLock:
        import fcntl
        import socket
        import sys

        self.path.parent.mkdir(parents=True, exist_ok=True)
        f = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 - held until release()
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip()
            f.close()
            raise RunLocked(
                f"{self.path.parent} is in use by another invocation "
                f"({_describe_holder(holder)}); wait for it to end or stop it, then rerun"
            ) from None
        f.seek(0)
        f.truncate()
        f.write(
            json.dumps(
                {
                    "pid": os.getpid(),
                    "host": socket.gethostname(),
                    "command": " ".join(sys.argv),
                    "since": time.strftime("%Y-%m-%d %H:%M:%S"),
                }
            )
            + "\n"
        )
        f.flush()
        self._file = f
        return self

    def release(self) -> None:
        if self._file is not None:
            self._file.close()  # closing the descriptor drops the flock
            self._file = None


def _describe_holder(text: str) -> str:
    try:
        h = json.loads(text)
        return f"pid {h['pid']} on {h['host']} since {h['since']}: {h['command']}"
    except (ValueError, KeyError, TypeError):
        return "holder unknown"


class RunStore:
    """All reads and writes of one run directory. Thread-safe.

    ``root`` is made absolute once, here: every path the store hands out
    (``problem_dir``, the call log's) is then absolute, so a relative run directory
    (``runs/x``, ``./x``) gives the documented layout and never ``runs/x/runs/x/``."""

    def __init__(self, root: Path):
        self.root = Path(root).expanduser().absolute()
        self.root.mkdir(parents=True, exist_ok=True)
        self._locks: dict[Path, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self._appended: set[Path] = set()
        self.disk_full = threading.Event()
        """Set on the first ENOSPC: the run stops starting work (see pipeline)."""

    # -- disk space ----------------------------------------------------------------------
    def reserve_space(self) -> None:
        """Keep a small file to free when the disk fills up (see ``_guard``)."""
        path = self.root / RESERVE_FILE
        if path.is_file() and path.stat().st_size >= RESERVE_BYTES:
            return
        try:
            with path.open("wb") as f:
                f.write(b"\0" * RESERVE_BYTES)
                f.flush()
                os.fsync(f.fileno())
        except OSError as e:
            path.unlink(missing_ok=True)
            if _is_disk_full(e):
                raise DiskFull(path, e) from e
            raise

    def _guard(self, write: Callable[[], Any]) -> Any:
        try:
            return write()
        except DiskFull:
            if not self.disk_full.is_set():
                self.disk_full.set()
                (self.root / RESERVE_FILE).unlink(missing_ok=True)
                log.error("disk full under %s: the run stops", self.root)
            raise

    # -- paths -------------------------------------------------------------------------
    def problem_dir(self, problem_id: str) -> Path:
        d = self.root / "problems" / safe_name(problem_id)
        d.mkdir(parents=True, exist_ok=True)
        return d

    def problem_ids(self) -> list[str]:
        d = self.root / "problems"
        if not d.is_dir():
            return []
        ids = []
        for p in sorted(d.iterdir()):
            data = self.read_json(p / Record.PROBLEM.file)
            if data and "id" in data:
                ids.append(data["id"])
        return ids

    def _lock(self, path: Path) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(path, threading.Lock())

    # -- plain JSON --------------------------------------------------------------------
    def write_json(self, path: Path, data: BaseModel | dict[str, Any] | list[Any]) -> None:
        path = self._abs(path)
        text = json_text(to_jsonable(data), indent=1)
        with self._lock(path):
            self._guard(lambda: atomic_write_text(path, text + "\n"))

    def read_json(self, path: Path) -> Any | None:
        path = self._abs(path)
        if not path.is_file():
            return None
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            log.warning("unreadable record %s (%s); treating it as absent", path, e)
            return None

    def _abs(self, path: Path) -> Path:
        """A path below the run directory: absolute paths as they are, relative ones
        relative to ``root`` (``Path("status.json")``)."""
        path = Path(path)
        return path if path.is_absolute() else self.root / path

    # -- JSON lines --------------------------------------------------------------------
    def append_jsonl(self, path: Path, obj: BaseModel | dict[str, Any]) -> tuple[int, int]:
        """Append one line; returns (offset, length) of the line in the file."""
        path = self._abs(path)
        line = json_text(to_jsonable(obj)) + "\n"
        data = line.encode("utf-8")
        with self._lock(path):
            lead = b""
            if path not in self._appended and _ends_mid_line(path):
                lead = b"\n"  # a line cut short by a kill stays alone on its line
            start = self._guard(lambda: append_bytes(path, lead + data))
            self._appended.add(path)
        return start + len(lead), len(data)

    def read_jsonl(self, path: Path) -> list[dict[str, Any]]:
        return list(read_jsonl(self._abs(path)))

    def append_prompt(self, problem_id: str, record: dict[str, Any]) -> None:
        """Append to problems/<id>/prompts.jsonl.gz: one gzip member per record, compressed
        before the lock is taken, written with one append (a kill cuts at most this one)."""
        path = self.problem_dir(problem_id) / PROMPTS_FILE
        line = (json_text(record) + "\n").encode("utf-8")
        member = gzip.compress(line, compresslevel=PROMPTS_GZIP_LEVEL, mtime=0)
        with self._lock(path):
            self._guard(lambda: append_bytes(path, member))

    def read_prompts(self, problem_id: str) -> list[dict[str, Any]]:
        """Every complete prompt record; a member cut short by a kill is skipped and the
        records after it are kept."""
        path = self.problem_dir(problem_id) / PROMPTS_FILE
        if not path.is_file():
            return []
        out: list[dict[str, Any]] = []
        for member in gzip_members(path.read_bytes()):
            for line in member.decode("utf-8", errors="replace").splitlines():
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
        return out

    # -- fingerprinted stage records ---------------------------------------------------
    def save_record(self, problem_id: str, name: str, record: BaseModel, fingerprint: str) -> None:
        self.write_json(
            self.problem_dir(problem_id) / f"{name}.json",
            {"fingerprint": fingerprint, "saved_at": time.time(), "data": to_jsonable(record)},
        )

    def load_record(self, problem_id: str, name: str, cls: type[T], fingerprint: str) -> T | None:
        """The record if present *and* produced by the same fingerprint. A stale record is
        moved aside (``stale/``) with a warning, so it is never reused silently."""
        path = self.problem_dir(problem_id) / f"{name}.json"
        raw = self.read_json(path)
        if raw is None:
            return None
        if raw.get("fingerprint") != fingerprint:
            self.archive_stale(path)
            log.warning(
                "%s/%s was produced by a different config or prompt (fingerprint %s, now %s); "
                "recomputing it (old record kept in stale/)",
                problem_id,
                name,
                raw.get("fingerprint"),
                fingerprint,
            )
            return None
        try:
            return cls.model_validate(raw["data"])
        except Exception as e:
            log.warning("%s/%s does not parse (%s); recomputing it", problem_id, name, e)
            self.archive_stale(path)
            return None

    def record_data(self, problem_id: str, name: str) -> dict[str, Any]:
        """A stage record's data whatever its fingerprint ({} when absent): for reading a
        run's results (exports, evaluation, ensembling input), never for resuming. The
        same reader as the report's (``records.read_record_data``)."""
        return read_record_data(self.problem_dir(problem_id), name)

    def archive_stale(self, path: Path) -> None:
        path = self._abs(path)
        if not path.exists():
            return
        dest = path.parent / "stale" / f"{path.stem}.{int(time.time() * 1000)}{path.suffix}"
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(path, dest)

    def delete_record(self, problem_id: str, name: str) -> None:
        (self.problem_dir(problem_id) / f"{name}.json").unlink(missing_ok=True)
