"""An on-disk index of a run's call log, so a resumed run looks calls up without holding
the log in memory (a full SWE-bench Verified run makes millions of relevance calls).

``calls.jsonl`` stays the record that survives kills; ``calls.index.sqlite`` next to it
maps each request hash to the offset and length of its first answered line, sums the spend
per (problem, stage), lists each problem's lines, and remembers how far into the log it
has read. Opening catches up
from there (only lines appended since, e.g. by a killed invocation); a log that was
replaced or cut shorter than the index, or an unreadable index, means a rebuild from the
log. The index is derived data: losing it costs a rebuild, never an answer.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

SCHEMA_VERSION = "2"
HEAD_BYTES = 4096
"""The log's first bytes, hashed: a different head means a different log (rebuild)."""
BATCH = 20_000

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS calls (
    hash TEXT PRIMARY KEY, offset INTEGER NOT NULL, length INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS lines (
    problem TEXT NOT NULL, offset INTEGER NOT NULL, length INTEGER NOT NULL,
    PRIMARY KEY (problem, offset)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS spend (
    problem TEXT NOT NULL, stage TEXT NOT NULL, cost REAL NOT NULL,
    PRIMARY KEY (problem, stage)
) WITHOUT ROWID;
"""


def index_path_for(log_path: Path) -> Path:
    return log_path.with_name(f"{log_path.stem}.index.sqlite")


def _head_digest(path: Path, length: int) -> str:
    with path.open("rb") as f:
        return hashlib.sha256(f.read(min(length, HEAD_BYTES))).hexdigest()


class CallIndex:
    """Request hash -> log line, spend per (problem, stage). Thread-safe."""

    def __init__(self, log_path: Path, index_path: Path | None = None):
        self.log_path = Path(log_path)
        self.path = index_path or index_path_for(self.log_path)
        self._lock = threading.Lock()
        self._db = self._connect()
        self._reader: int | None = None
        self.caught_up_lines = 0
        """Lines read from the log by the last ``catch_up`` (0 when the index was current)."""
        self.catch_up()

    # -- the database ----------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        for attempt in range(2):
            try:
                db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
                # derived data: a crash may lose the last updates, the catch-up redoes them
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=OFF")
                db.executescript(SCHEMA)
                return db
            except sqlite3.DatabaseError as e:
                _raise_if_full(self.path, e)
                if attempt:
                    raise
                log.warning("call index %s is unreadable (%s); rebuilding it", self.path, e)
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{self.path}{suffix}").unlink(missing_ok=True)
        raise AssertionError("unreachable")

    def _meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def _set_meta(self, key: str, value: str) -> None:
        self._db.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def _reset(self) -> None:
        self._db.execute("DELETE FROM calls")
        self._db.execute("DELETE FROM lines")
        self._db.execute("DELETE FROM spend")
        self._db.execute("DELETE FROM meta")
        self._set_meta("version", SCHEMA_VERSION)
        self._set_meta("indexed_to", "0")

    # -- reading the log -------------------------------------------------------------------
    def catch_up(self) -> None:
        """Index the log lines appended since the index was last updated."""
        with self._lock:
            size = self.log_path.stat().st_size if self.log_path.is_file() else 0
            indexed_to = int(self._meta("indexed_to") or 0)
            head = self._meta("head")
            stale = (
                self._meta("version") != SCHEMA_VERSION
                or indexed_to > size
                or (indexed_to > 0 and head != _head_digest(self.log_path, indexed_to))
            )
            self._db.execute("BEGIN")
            try:
                if stale:
                    if indexed_to:
                        log.info("call index %s does not match the log; rebuilding", self.path)
                    self._reset()
                    indexed_to = 0
                if size > indexed_to:
                    indexed_to = self._index_from(indexed_to)
                self._set_meta("indexed_to", str(indexed_to))
                if indexed_to:
                    self._set_meta("head", _head_digest(self.log_path, indexed_to))
                self._db.execute("COMMIT")
            except BaseException as e:
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK")
                if isinstance(e, sqlite3.Error):
                    _raise_if_full(self.path, e)
                raise

    def _index_from(self, offset: int) -> int:
        """Index whole lines from ``offset``; returns the offset after the last whole line
        (a fragment at the end, a line being written or cut by a kill, is left for later)."""
        rows = _Rows()
        lines = 0
        with self.log_path.open("rb") as f:
            f.seek(offset)
            for line in f:
                if not line.endswith(b"\n"):
                    break
                start, offset = offset, offset + len(line)
                lines += 1
                rec = _parse(line)
                if rec is None:
                    continue
                rows.add(rec, start, len(line))
                if len(rows.lines) >= BATCH:
                    self._insert(rows)
                    rows = _Rows()
        self._insert(rows)
        self.caught_up_lines = lines
        return offset

    def _insert(self, rows: _Rows) -> None:
        self._db.executemany(
            "INSERT OR IGNORE INTO calls (hash, offset, length) VALUES (?, ?, ?)", rows.calls
        )
        self._db.executemany(
            "INSERT OR IGNORE INTO lines (problem, offset, length) VALUES (?, ?, ?)", rows.lines
        )
        self._db.executemany(
            "INSERT INTO spend (problem, stage, cost) VALUES (?, ?, ?) "
            "ON CONFLICT (problem, stage) DO UPDATE SET cost = cost + excluded.cost",
            [(p, s, c) for (p, s), c in rows.spend.items()],
        )

    # -- use -------------------------------------------------------------------------------
    def lookup(self, request_hash: str) -> dict[str, Any] | None:
        """The first answered call with this request hash, read from the log."""
        with self._lock:
            row = self._db.execute(
                "SELECT offset, length FROM calls WHERE hash = ?", (request_hash,)
            ).fetchone()
            if row is None:
                return None
            if self._reader is None:
                self._reader = os.open(self.log_path, os.O_RDONLY)
            line = os.pread(self._reader, row[1], row[0])
        rec = _parse(line)
        if rec is None or rec.get("request_hash") != request_hash:
            log.warning("call index %s points at another line; not using it", self.path)
            return None
        return rec

    def added(self, record: dict[str, Any], offset: int, length: int) -> None:
        """Index a line just appended at ``offset`` (by this process, under the run lock)."""
        rows = _Rows()
        rows.add(record, offset, length)
        with self._lock:
            try:
                self._db.execute("BEGIN")
                self._insert(rows)
                if offset < HEAD_BYTES:
                    self._set_meta("head", _head_digest(self.log_path, offset + length))
                self._set_meta("indexed_to", str(offset + length))
                self._db.execute("COMMIT")
            except (sqlite3.Error, OSError) as e:  # e.g. a full disk: the next start catches up
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK")
                log.warning("call index update failed (%s); the next start catches up", e)

    def problem_lines(self, problem: str) -> bytes:
        """Every line of ``problem`` in the log, in log order (what a Ray worker retrying
        the problem is seeded with), read by offset without scanning the log."""
        with self._lock:
            spans = self._db.execute(
                "SELECT offset, length FROM lines WHERE problem = ? ORDER BY offset", (problem,)
            ).fetchall()
            if not spans:
                return b""
            if self._reader is None:
                self._reader = os.open(self.log_path, os.O_RDONLY)
            return b"".join(os.pread(self._reader, length, offset) for offset, length in spans)

    def spend(self) -> Iterator[tuple[str, str, float]]:
        """(problem, stage, USD) summed over every call in the log."""
        with self._lock:
            rows = self._db.execute("SELECT problem, stage, cost FROM spend").fetchall()
        yield from rows

    def close(self) -> None:
        with self._lock:
            if self._reader is not None:
                os.close(self._reader)
                self._reader = None
            self._db.close()


class _Rows:
    """Index rows of some log lines, to insert in one statement per table."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int, int]] = []
        self.lines: list[tuple[str, int, int]] = []
        self.spend: dict[tuple[str, str], float] = {}

    def add(self, rec: dict[str, Any], offset: int, length: int) -> None:
        _add_spend(self.spend, rec)
        if _answered(rec):
            self.calls.append((rec["request_hash"], offset, length))
        if isinstance(rec.get("problem"), str):
            self.lines.append((rec["problem"], offset, length))


def _raise_if_full(path: Path, e: sqlite3.Error) -> None:
    if getattr(e, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL:
        from codemonkeys.store import DiskFull

        raise DiskFull(path, OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))) from e


def _parse(line: bytes) -> dict[str, Any] | None:
    try:
        rec = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        return None
    return rec if isinstance(rec, dict) else None


def _answered(rec: dict[str, Any]) -> bool:
    return "request_hash" in rec and "text" in rec and not rec.get("error")


def _add_spend(spend: dict[tuple[str, str], float], rec: dict[str, Any]) -> None:
    try:
        cost = float(rec.get("cost_usd", 0.0) or 0.0)
    except (TypeError, ValueError):
        return
    if cost:
        key = (str(rec.get("problem", "")), str(rec.get("stage", "")))
        spend[key] = spend.get(key, 0.0) + cost
