"""The run directory: every record a run produces, written so a killed run resumes.

Layout (``runs/<run>/``)::

    config.json                 effective config of the last invocation
    calls.jsonl                 one line per model call (usage, cost, response; never keys)
    status.json                 run status (finished / budget_exhausted / interrupted / failed)
    problems/<id>/problem.json  the problem (no gold fields)
    problems/<id>/<record>.json stage records: {"fingerprint": ..., "data": {...}}
    problems/<id>/prompts.jsonl.gz   the prompts sent for this problem (optional)

JSON records are written atomically (temp file + fsync + rename). JSON-lines files are
appended one whole line per ``write`` call under a lock; a line cut short by a kill is
skipped on read. A record whose fingerprint differs from the current config's is moved to
``problems/<id>/stale/`` with a warning and recomputed, never silently reused.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel

from codemonkeys.problem import safe_name

log = logging.getLogger(__name__)

T = TypeVar("T", bound=BaseModel)


def atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
            data = self.read_json(p / "problem.json")
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
            atomic_write_text(path, text + "\n")

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
    def append_jsonl(self, path: Path, obj: BaseModel | dict[str, Any]) -> None:
        path = self._abs(path)
        line = json_text(to_jsonable(obj)) + "\n"
        data = line.encode("utf-8")
        with self._lock(path):
            path.parent.mkdir(parents=True, exist_ok=True)
            if path not in self._appended and _ends_mid_line(path):
                data = b"\n" + data  # a line cut short by a kill stays alone on its line
            self._appended.add(path)
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, data)
            finally:
                os.close(fd)

    def read_jsonl(self, path: Path) -> list[dict[str, Any]]:
        return list(read_jsonl(self._abs(path)))

    def append_prompt(self, problem_id: str, record: dict[str, Any]) -> None:
        """Append to problems/<id>/prompts.jsonl.gz (one gzip member per record)."""
        path = self.problem_dir(problem_id) / "prompts.jsonl.gz"
        line = (json_text(record) + "\n").encode("utf-8")
        with self._lock(path), gzip.open(path, "ab") as f:
            f.write(line)

    def read_prompts(self, problem_id: str) -> list[dict[str, Any]]:
        path = self.problem_dir(problem_id) / "prompts.jsonl.gz"
        out: list[dict[str, Any]] = []
        if not path.is_file():
            return out
        try:
            with gzip.open(path, "rt", encoding="utf-8") as f:
                for line in f:
                    try:
                        out.append(json.loads(line))
                    except json.JSONDecodeError:
                        continue
        except (EOFError, gzip.BadGzipFile, OSError):
            pass  # a member cut short by a kill: keep what was complete
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
        run's results (exports, evaluation, ensembling input), never for resuming."""
        raw = self.read_json(self.problem_dir(problem_id) / f"{name}.json")
        data = raw.get("data", raw) if isinstance(raw, dict) else None
        return data if isinstance(data, dict) else {}

    def archive_stale(self, path: Path) -> None:
        path = self._abs(path)
        if not path.exists():
            return
        dest = path.parent / "stale" / f"{path.stem}.{int(time.time() * 1000)}{path.suffix}"
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(path, dest)

    def delete_record(self, problem_id: str, name: str) -> None:
        (self.problem_dir(problem_id) / f"{name}.json").unlink(missing_ok=True)
