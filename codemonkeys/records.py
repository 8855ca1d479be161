"""The registry of per-problem records: name and file of each, in pipeline order (each
one's pydantic type: ``record_types.py``).

Every record a problem directory holds (``runs/<run>/problems/<id>/``) is named here once;
writers (``RunStore.save_record``/``write_json``) and readers use these names, never string
literals. The file of a record is ``<name>.json`` (a trajectory's ``trajectory-<i>.json``);
the layout is the one ``docs/architecture.md`` describes, so old runs keep loading.

Stage records are saved in a ``{"fingerprint", "saved_at", "data"}`` envelope;
``problem.json``, ``gold.json`` and ``evaluation.json`` are plain JSON. ``read_record_data``
is the one reader of a record's data whatever its fingerprint (reports, exports, evaluation,
ensembling); ``RunStore.load_record`` is the fingerprint-checked typed load for resuming.
"""

from __future__ import annotations

import json
import re
from enum import StrEnum
from pathlib import Path
from typing import Any


class Record(StrEnum):
    """Per-problem records in pipeline order; the value is the file stem."""

    PROBLEM = "problem"
    GOLD = "gold"
    RELEVANCE = "relevance"
    CONTEXT = "context"
    TRAJECTORY = "trajectory"
    """One file per trajectory: ``trajectory-<i>.json`` (see ``trajectory_name``)."""
    ENSEMBLE_TESTS = "ensemble-tests"
    """The ensemble job's testing machines: ``ensemble-tests-<i>.json``."""
    GENERATION = "generation"
    ADAPTIVE = "adaptive"
    """``generation.adaptive``: the stop rule's decisions after each wave."""
    SELECTION = "selection"
    TIMING = "timing"
    RESULT = "result"
    EVALUATION = "evaluation"

    @property
    def file(self) -> str:
        return f"{self.value}.json"


def trajectory_name(index: int, kind: Record = Record.TRAJECTORY) -> str:
    """The record name of trajectory ``index`` (``trajectory-3``; ``ensemble-tests-0``)."""
    return f"{kind.value}-{index}"


def read_json_file(path: Path) -> Any | None:
    """A JSON file's content or None when absent/unreadable (a record cut short by a kill)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return None


def unwrap(raw: Any) -> Any:
    """The payload of a ``RunStore.save_record`` envelope, or the raw value otherwise."""
    if isinstance(raw, dict) and "data" in raw and ("fingerprint" in raw or "saved_at" in raw):
        return raw["data"]
    return raw


def read_record_data(problem_dir: Path, name: str) -> dict[str, Any]:
    """A record's data whatever its fingerprint, ``{}`` when absent, unreadable or not an
    object: the one way records are read for reporting, exports, evaluation and ensembling
    (never for resuming: that is ``RunStore.load_record``)."""
    data = unwrap(read_json_file(Path(problem_dir) / f"{name}.json"))
    return data if isinstance(data, dict) else {}


def trajectory_files(problem_dir: Path) -> list[Path]:
    """``trajectory-<i>.json`` files of a problem, by index."""

    def index(p: Path) -> tuple[int, str]:
        m = re.search(r"(\d+)$", p.stem)
        return (int(m.group(1)) if m else 1 << 30, p.name)

    return sorted(Path(problem_dir).glob(f"{Record.TRAJECTORY.value}-*.json"), key=index)
