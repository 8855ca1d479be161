"""Ensembling other systems' predictions ("Barrel of Monkeys"): predictions in, candidates
out, then the same matrix, voting and selection as a codemonkeys run. No ground-truth
labels are needed.

- ``load_predictions``: SWE-bench JSON lines, the JSON dict form, mini-swe-agent /
  SWE-agent ``preds.json`` -> ``{instance_id: [(system, patch), ...]}``;
- ``merge_candidates``: one ``CandidateSet`` per instance, empty patches dropped, duplicates
  (the same text up to line endings, trailing whitespace, index lines and hunk offsets)
  merged with their sources kept, counts reported; selection, which has the base files,
  then merges the same change written in other formats (``candidates.candidate_id``);
- ``ensemble_problem``: generate tests when the instance has none, then ``run_selection``;

Two label-only metrics live here for the ensembling study (``oracle_coverage``,
``expected_random_pick_rate``); generic reporting metrics are in ``report.py``.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from codemonkeys.candidates import CandidateSet, candidate_id
from codemonkeys.config import Config
from codemonkeys.errors import Interrupted
from codemonkeys.execution import ExecutionCache, Script
from codemonkeys.generation.stage import run_testing_state_machine
from codemonkeys.predictions import (
    PredictionsError,
    read_prediction_rows,
)
from codemonkeys.problem import Problem
from codemonkeys.records import Record
from codemonkeys.selection.records import SelectionRecord
from codemonkeys.selection.stage import run_selection
from codemonkeys.store import RunStore

if TYPE_CHECKING:
    from codemonkeys.llm import ModelHub
    from codemonkeys.sandbox import SandboxPool

log = logging.getLogger(__name__)

Predictions = dict[str, list[tuple[str, str]]]
"""instance_id -> [(system name, patch), ...] in file order."""

__all__ = [
    "MergeReport",
    "Predictions",
    "PredictionsError",
    "ensemble_problem",
    "expected_random_pick_rate",
    "greedy_systems",
    "load_predictions",
    "load_resolved_matrix",
    "merge_candidates",
    "oracle_coverage",
]


# -- reading -------------------------------------------------------------------------------
def default_system_name(path: Path) -> str:
    """``<dir>/all_preds.jsonl`` and ``<dir>/preds.json`` are named after their folder."""
    path = Path(path)
    if path.stem in ("all_preds", "preds", "predictions") and path.parent.name:
        return path.parent.name
    return path.stem


def load_predictions(
    path: Path | str, system_name: str | None = None, *, rejected: list[str] | None = None
) -> Predictions:
    """Read one predictions file. The system name of a row is ``system_name`` if given,
    else the row's ``model_name_or_path``, else the file's folder/stem. Empty patches are
    kept here (``merge_candidates`` counts and drops them). With ``rejected``, a malformed
    row is recorded there (file, line, what is wrong) and skipped instead of raising."""
    path = Path(path)
    fallback = default_system_name(path)
    out: Predictions = {}
    for row in read_prediction_rows(path, rejected):
        name = system_name or row["model_name_or_path"] or fallback
        out.setdefault(row["instance_id"], []).append((name, row["model_patch"]))
    return out


# -- merging -------------------------------------------------------------------------------
class MergeReport(BaseModel):
    """Counts over all (instance, system, patch) rows merged."""

    total: int = 0
    empty: int = 0
    duplicates: int = 0
    """Non-empty rows whose patch text equals (``candidates.normalize_patch``) one already
    in that instance."""
    distinct: int = 0
    instances: int = 0
    """Instances with at least one distinct candidate."""
    by_system: dict[str, int] = Field(default_factory=dict)
    """Non-empty rows per system."""
    rejected: list[str] = Field(default_factory=list)
    """Malformed rows that were skipped (file, line, what is wrong)."""

    def summary(self) -> str:
        return (
            f"{self.total} predictions: {self.empty} empty, {self.duplicates} duplicates, "
            f"{self.distinct} distinct candidates over {self.instances} instances"
        )


@dataclass
class _Merger:
    """Rows added one by one into per-instance candidate sets, with the counts."""

    wanted: set[str] | None
    """The instances kept (None: all)."""
    merged: dict[str, CandidateSet] = field(default_factory=dict)
    report: MergeReport = field(default_factory=MergeReport)

    def wants(self, iid: str) -> bool:
        return self.wanted is None or iid in self.wanted

    def add_patch(self, iid: str, system: str, patch: str) -> None:
        if not self.wants(iid):
            return
        self.report.total += 1
        if not patch or not patch.strip():
            self.report.empty += 1
            return
        self.report.by_system[system] = self.report.by_system.get(system, 0) + 1
        cs = self.merged.setdefault(iid, CandidateSet())
        cid = candidate_id(patch)
        if any(c.id == cid for c in cs.candidates):
            self.report.duplicates += 1
        cs.add_patch(patch, system)

    def add_own(self, iid: str, own: CandidateSet) -> None:
        """A codemonkeys run's candidates (each source counted as a system) and tests."""
        for c in own.candidates:
            for src in c.sources or ["codemonkeys"]:
                self.add_patch(iid, src, c.patch)
        if self.wants(iid):
            target = self.merged.setdefault(iid, CandidateSet())
            for t in own.tests:
                target.add_test(t)

    def result(self) -> tuple[dict[str, CandidateSet], MergeReport]:
        merged = {k: v for k, v in sorted(self.merged.items()) if v.candidates or v.tests}
        self.report.distinct = sum(len(v.candidates) for v in merged.values())
        self.report.instances = sum(1 for v in merged.values() if v.candidates)
        return merged, self.report


def merge_candidates(
    prediction_sets: Iterable[Predictions],
    own: Mapping[str, CandidateSet] | None = None,
    *,
    instance_ids: Iterable[str] | None = None,
) -> tuple[dict[str, CandidateSet], MergeReport]:
    """One ``CandidateSet`` per instance from all ``prediction_sets`` and, optionally, a
    codemonkeys run's own candidates (their tests come along). ``instance_ids`` restricts
    the instances kept."""
    merger = _Merger(set(instance_ids) if instance_ids is not None else None)
    for iid, cs in (own or {}).items():
        merger.add_own(iid, cs)
    for preds in prediction_sets:
        for iid, rows in preds.items():
            for system, patch in rows:
                merger.add_patch(iid, system, patch)
    return merger.result()


def load_run_candidates(
    store: RunStore, record_name: str = Record.GENERATION
) -> dict[str, CandidateSet]:
    """A codemonkeys run's own candidates and tests (the generation stage's result record,
    ``problems/<id>/generation.json``), read regardless of fingerprint: ensembling uses them
    as input, it does not resume them."""
    out: dict[str, CandidateSet] = {}
    for iid in store.problem_ids():
        data = store.record_data(iid, record_name)
        if not data:
            continue
        try:
            out[iid] = CandidateSet.model_validate(data.get("candidates", data))
        except Exception as e:
            log.warning("%s: unreadable %s record (%s); skipped", iid, record_name, e)
    return out


# -- one problem ---------------------------------------------------------------------------
GenerateTests = Callable[
    [Problem, "ModelHub", "SandboxPool", RunStore, Config, ExecutionCache], list[Script]
]
"""(problem, hub, pool, store, config, cache) -> approved test scripts."""

ENSEMBLE_TESTS_RECORD = Record.ENSEMBLE_TESTS


def generate_tests_with_testing_machine(
    problem: Problem,
    hub: ModelHub,
    pool: SandboxPool,
    store: RunStore,
    config: Config,
    cache: ExecutionCache,
) -> list[Script]:
    """Run ``selection.ensemble_test_trajectories`` testing state machines (the generation
    stage's, reused; resumable records ``ensemble-tests-<i>``) in parallel and return the
    tests the model approved. Their runs on the original code land in ``cache``, so the
    matrix does not repeat them."""
    n = config.selection.ensemble_test_trajectories

    def one(i: int) -> Script | None:
        rec = run_testing_state_machine(
            problem,
            hub,
            config,
            pool=pool,
            cache=cache,
            index=i,
            store=store,
            record_name=ENSEMBLE_TESTS_RECORD,
        )
        return rec.final_test if rec.test_approved else None

    with ThreadPoolExecutor(max_workers=max(1, n), thread_name_prefix="ens-tests") as ex:
        results = list(ex.map(one, range(n)))
    return [s for s in results if s is not None and s.content.strip()]


def ensemble_problem(
    problem: Problem,
    candidate_set: CandidateSet,
    hub: ModelHub,
    pool: SandboxPool,
    store: RunStore,
    config: Config,
    *,
    cache: ExecutionCache | None = None,
    generate_tests: GenerateTests | None = None,
) -> SelectionRecord:
    """Select among ``candidate_set`` for ``problem``; when it carries no tests, write some
    first with the testing state machine (a failure there leaves selection with the
    regression verifier and the selector only). The selector sees up to
    ``selection.ensemble_top_k`` distinct patches (the paper sent every system's), not the
    ``top_k`` of a codemonkeys run; how many systems proposed a patch is never a tie-break."""
    cs = candidate_set.model_copy(deep=True)
    config = config.model_copy(deep=True)
    config.selection.top_k = config.selection.ensemble_top_k
    cache = cache or ExecutionCache(pool.lease, timeout=config.sandbox.script_timeout_s)
    if not cs.tests and len(cs.candidates) > 1 and config.selection.ensemble_test_trajectories > 0:
        gen = generate_tests or generate_tests_with_testing_machine
        try:
            for script in gen(problem, hub, pool, store, config, cache):
                cs.add_test(script)
        except Interrupted:
            raise
        except Exception as e:  # a cost cap or a provider failure: select without tests
            log.warning("%s: test generation failed (%s); selecting without tests", problem.id, e)
    return run_selection(problem, cs, hub, pool, store, config, cache=cache)


# -- label-only metrics for the ensembling study ---------------------------------------------
def load_resolved_matrix(path: Path | str) -> tuple[list[str], dict[str, set[str]]]:
    """``resolved_matrix.json`` -> (instance ids, {system: resolved ids})."""
    import json

    data = json.loads(Path(path).read_text())
    ids = list(data["instance_ids"])
    return ids, {name: set(s["resolved"]) for name, s in data["systems"].items()}


def oracle_coverage(
    resolved: Mapping[str, set[str]], systems: Sequence[str], instance_ids: Sequence[str]
) -> float:
    """Fraction of instances some member system resolved: what a perfect selector reaches."""
    if not instance_ids:
        return 0.0
    union: set[str] = set().union(*(resolved[s] for s in systems)) if systems else set()
    return sum(1 for i in instance_ids if i in union) / len(instance_ids)


def expected_random_pick_rate(
    resolved: Mapping[str, set[str]], systems: Sequence[str], instance_ids: Sequence[str]
) -> float:
    """Expected resolve rate when each instance's patch is one member system's prediction
    picked uniformly at random: per instance the fraction of members that resolved it,
    averaged. (With labels only, identical patches cannot be merged; the paper's random
    baseline picks among distinct candidates, which differs when systems agree.)"""
    if not instance_ids or not systems:
        return 0.0
    return sum(
        sum(1 for s in systems if i in resolved[s]) / len(systems) for i in instance_ids
    ) / len(instance_ids)


def greedy_systems(
    resolved: Mapping[str, set[str]], instance_ids: Sequence[str], k: int, start: Sequence[str] = ()
) -> list[str]:
    """Greedy max-coverage choice of ``k`` systems (ties: more resolved, then name)."""
    chosen = list(start)
    covered = set().union(*(resolved[s] for s in chosen)) if chosen else set()
    ids = set(instance_ids)
    while len(chosen) < k:
        rest = [s for s in sorted(resolved) if s not in chosen]
        if not rest:
            break
        best = min(
            rest,
            key=lambda s: (-len((resolved[s] & ids) - covered), -len(resolved[s] & ids), s),
        )
        chosen.append(best)
        covered |= resolved[best]
    return chosen


def random_pick_simulation(
    resolved: Mapping[str, set[str]],
    systems: Sequence[str],
    instance_ids: Sequence[str],
    seed: int = 0,
    trials: int = 200,
) -> float:
    """Monte-Carlo check of ``expected_random_pick_rate`` (used by tests/benchmarks)."""
    rng = random.Random(seed)
    hits = 0
    for _ in range(trials):
        for i in instance_ids:
            hits += i in resolved[rng.choice(list(systems))]
    return hits / (trials * len(instance_ids)) if instance_ids else 0.0
