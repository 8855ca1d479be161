"""Each per-problem record's pydantic type, by its name in the registry (``records.Record``).

Apart from ``records.py`` so the registry of names and files stays a leaf everything can
import (the store, the stages), while this map imports the record modules it names; none
of them imports it back.
"""

from __future__ import annotations

from pydantic import BaseModel

from codemonkeys.context.records import ContextRecord
from codemonkeys.context.relevance import RelevanceRecord
from codemonkeys.generation.records import AdaptiveRecord, GenerationResult, TrajectoryRecord
from codemonkeys.problem import Gold, Problem
from codemonkeys.records import Record
from codemonkeys.run_records import ProblemResult, StageTimes
from codemonkeys.selection.records import SelectionRecord

RECORD_TYPES: dict[Record, type[BaseModel]] = {
    Record.PROBLEM: Problem,
    Record.GOLD: Gold,
    Record.RELEVANCE: RelevanceRecord,
    Record.CONTEXT: ContextRecord,
    Record.TRAJECTORY: TrajectoryRecord,
    Record.ENSEMBLE_TESTS: TrajectoryRecord,
    Record.GENERATION: GenerationResult,
    Record.ADAPTIVE: AdaptiveRecord,
    Record.SELECTION: SelectionRecord,
    Record.TIMING: StageTimes,
    Record.RESULT: ProblemResult,
}


def record_type(record: Record) -> type[BaseModel] | None:
    """The pydantic type a record's data validates as (None: a plain JSON document,
    ``evaluation.json``, written by ``swebench.run.evaluation_record``)."""
    return RECORD_TYPES.get(record)
