"""Relevance decisions that outlive a run: a size-bounded directory cache shared by runs.

A decision is stored under its key (``relevance.decision_key``: file content hash, issue
hash, and everything else that changes an answer: model, endpoint, prompt hash,
temperature, the shown file's size limit, ...; ``relevance.asking_key``) as one small JSON
file, ``<dir>/<key[:2]>/<key>.json``, written
atomically, so concurrent runs can share the directory. A rerun of the same problem with a
new generation config (a new run directory) answers the scan from here and pays nothing.

Only provider models are cached (``anthropic/``, ``openai/``): a stand-in's name
(``scripted:policy.py``) does not pin what it answers. Only final answers are stored
(``relevant`` / ``not_relevant``); a parse error or an API error is asked again next time.
An entry is read through its type (``StoredDecision``): one that does not validate, or
that names another key, is a miss (asked again and overwritten), never a crash. When the
directory grows past ``relevance_cache_max_mb``, the least recently used entries
are removed (reads touch their file) down to 80% of the bound.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from codemonkeys.config import ContextConfig

CACHED_STATUSES = ("relevant", "not_relevant")


class StoredDecision(BaseModel):
    """A relevance decision as the cache and a run's decisions file hold it, read through
    its type (strict: a summary that is not a string is not a decision)."""

    model_config = ConfigDict(strict=True, extra="ignore")
    key: str = ""
    status: Literal["relevant", "not_relevant", "parse_error", "context_length_exceeded"]
    summary: str = ""
    shrunk: bool = False
    truncated: bool = False
    cut_answers: int = 0
    error: str = ""


def invalid_reason(error: ValidationError) -> str:
    """One line saying why a stored decision was not taken."""
    first = error.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "entry"
    return f"{where}: {first['msg']}"[:200]


_PRUNE_TO = 0.8


def default_cache_dir() -> Path:
    """$XDG_CACHE_HOME/codemonkeys/relevance, else ~/.cache/codemonkeys/relevance."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "codemonkeys" / "relevance"


def cacheable_model(model: str) -> bool:
    return model.startswith(("anthropic/", "openai/"))


class DecisionCache:
    def __init__(self, directory: Path, max_bytes: int):
        self.directory = Path(directory).expanduser()
        self.max_bytes = max_bytes
        self.hits = 0
        self.stored = 0

    @classmethod
    def from_config(cls, cfg: ContextConfig) -> DecisionCache | None:
        if not cfg.relevance_cache:
            return None
        directory = cfg.relevance_cache_dir or default_cache_dir()
        return cls(directory, int(cfg.relevance_cache_max_mb * 1024 * 1024))

    def _path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.json"

    def get(self, key: str) -> StoredDecision | None:
        """The decision stored under ``key``; None when absent, unreadable, not a final
        answer, of the wrong type or stored under another key."""
        path = self._path(key)
        try:
            rec = StoredDecision.model_validate_json(path.read_bytes())
            os.utime(path)  # least recently used goes first when pruning
        except (OSError, ValidationError):
            return None
        if rec.status not in CACHED_STATUSES or (rec.key and rec.key != key):
            return None
        self.hits += 1
        return rec

    def put(self, key: str, rec: dict) -> None:
        if rec.get("status") not in CACHED_STATUSES:
            return
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(
                "w", dir=path.parent, prefix=".tmp-", suffix=".json", delete=False
            ) as tmp:
                json.dump(rec, tmp)
            os.replace(tmp.name, path)
        except OSError:
            return  # a cache that cannot be written costs a rerun, never the run
        self.stored += 1

    def size_bytes(self) -> int:
        return sum(size for _, size, _ in self._entries())

    def _entries(self) -> list[tuple[Path, int, float]]:
        out: list[tuple[Path, int, float]] = []
        if not self.directory.is_dir():
            return out
        for sub in self.directory.iterdir():
            if not sub.is_dir():
                continue
            for entry in os.scandir(sub):
                if entry.name.endswith(".json") and not entry.name.startswith(".tmp-"):
                    st = entry.stat()
                    out.append((Path(entry.path), st.st_size, st.st_mtime))
        return out

    def prune(self) -> int:
        """Remove least recently used entries while over the bound; returns how many."""
        entries = self._entries()
        total = sum(size for _, size, _ in entries)
        if total <= self.max_bytes:
            return 0
        removed = 0
        for path, size, _ in sorted(entries, key=lambda e: e[2]):
            if total <= self.max_bytes * _PRUNE_TO:
                break
            try:
                path.unlink()
            except OSError:
                continue
            total -= size
            removed += 1
        return removed
