"""Selection end to end in real containers: a fixture repository with a real bug, a
correct candidate among decoys, a scripted selector, and the fallback paths.

The fixture: ``calc.stats.median`` returns the upper middle element for even-length
lists. Candidates:

- ``correct``: averages the two middle elements for even lengths;
- ``hack``: special-cases the exact input of the reproduction test (proposed by 2 systems,
  so it ranks first among equal votes: voting alone would pick it);
- ``breaks_odd``: averages two elements for every length (odd lengths break);
- ``noop``: a comment only; ``empty``: nothing; ``silencer``: edits only the repo's test file.

One ExecutionCache is shared by the module, so each (patch, test) pair runs once for all
tests here; that is also what keeps this module quick.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from codemonkeys.candidates import CandidateSet, candidate_id
from codemonkeys.config import Config, EndpointConfig
from codemonkeys.execution import ExecutionCache, Script, run_script
from codemonkeys.llm import ModelHub
from codemonkeys.llm.recording import CallLog, CostTracker
from codemonkeys.problem import Problem
from codemonkeys.selection.records import SelectionRecord
from codemonkeys.selection.stage import run_selection
from codemonkeys.store import RunStore
from tests.conftest import FIXTURES, make_git_repo

pytestmark = [pytest.mark.docker]

STATS = '''"""Small statistics helpers."""


def mean(xs):
    return sum(xs) / len(xs)


def median(xs):
    s = sorted(xs)
    return s[len(s) // 2]
'''

SUITE = """import unittest

from calc.stats import mean, median


class StatsTest(unittest.TestCase):
    def test_mean(self):
        self.assertEqual(mean([1, 2, 3]), 2)

    def test_median_odd(self):
        self.assertEqual(median([3, 1, 2]), 2)


if __name__ == "__main__":
    unittest.main()
"""

ISSUE = "median() is wrong for lists of even length: median([1, 2, 3, 4]) returns 3, expected 2.5."


def _diff(
    repo: Path, new_stats: str | None = None, new_suite: str | None = None, context: int = 3
) -> str:
    """A real git diff (``context`` lines around changes) of the fixture repo with the
    given file contents."""
    targets = {"calc/stats.py": new_stats, "tests/test_stats.py": new_suite}
    originals = {p: (repo / p).read_text() for p in targets}
    try:
        for p, text in targets.items():
            if text is not None:
                (repo / p).write_text(text)
        return subprocess.run(
            ["git", "diff", f"-U{context}"], cwd=repo, capture_output=True, text=True, check=True
        ).stdout
    finally:
        for p, text in originals.items():
            (repo / p).write_text(text)


MEDIAN_OLD = "    return s[len(s) // 2]\n"
PATCHED = {
    "correct": "    n = len(s)\n    if n % 2:\n        return s[n // 2]\n    return (s[n // 2 - 1] + s[n // 2]) / 2\n",
    "hack": "    if xs == [1, 2, 3, 4]:\n        return 2.5\n    return s[len(s) // 2]\n",
    "breaks_odd": "    return (s[len(s) // 2 - 1] + s[len(s) // 2]) / 2\n",
    "noop": "    # the upper middle element\n    return s[len(s) // 2]\n",
}

STALE = """diff --git a/calc/stats.py b/calc/stats.py
--- a/calc/stats.py
+++ b/calc/stats.py
@@ -9,2 +9,2 @@ def median(xs):
     s = sorted(xs)
-    return s[len(s) - 1]
+    return s[-1]
"""
"""A patch written against other code: it does not apply."""

REPRO = Script(
    content="from calc.stats import median\n"
    "got = median([1, 2, 3, 4])\n"
    "print('median([1, 2, 3, 4]) =', got)\n"
    "raise SystemExit(0 if got == 2.5 else 2)\n"
)
ODD_STILL_WORKS = Script(
    content="from calc.stats import median\nraise SystemExit(0 if median([5, 1, 3]) == 3 else 2)\n"
)


@pytest.fixture(scope="module")
def fixture(tmp_path_factory, sandbox_image):
    from codemonkeys.sandbox import SandboxPool, SandboxSpec

    repo = tmp_path_factory.mktemp("calc")
    sha = make_git_repo(
        repo,
        {
            "calc/__init__.py": "",
            "calc/stats.py": STATS,
            "tests/__init__.py": "",
            "tests/test_stats.py": SUITE,
        },
    )
    patches = {name: _diff(repo, STATS.replace(MEDIAN_OLD, body)) for name, body in PATCHED.items()}
    patches["silencer"] = _diff(
        repo, new_suite=SUITE.replace("self.assertEqual(median([3, 1, 2]), 2)", "pass")
    )
    problem = Problem(
        id="calc-median", repo="local/calc", issue=ISSUE, repo_path=repo, base_commit=sha
    )
    pool = SandboxPool(
        SandboxSpec(
            kind="docker", image=sandbox_image, workdir="/repo", repo_path=repo, base_commit=sha
        ),
        size=2,
    )
    cache = ExecutionCache(pool.lease, timeout=60)
    try:
        yield problem, pool, cache, patches
    finally:
        pool.close()


def candidate_set(patches: dict[str, str]) -> CandidateSet:
    cs = CandidateSet()
    cs.add_patch("", "sysE")  # empty: dropped on entry
    cs.add_patch(patches["noop"], "sysN")
    cs.add_patch(patches["breaks_odd"], "sysB")
    cs.add_patch(patches["hack"], "sysH")
    cs.add_patch(patches["hack"].replace("\n", "  \n"), "sysH2")  # whitespace duplicate
    cs.add_patch(patches["correct"], "sysC")
    cs.add_patch(patches["silencer"], "sysS")
    cs.add_patch(STALE, "sysX")
    cs.add_test(REPRO)
    cs.add_test(ODD_STILL_WORKS)
    return cs


def select(
    tmp_path: Path, fixture, policy: str, *, cs: CandidateSet | None = None, **selection
) -> tuple[SelectionRecord, ModelHub, RunStore]:
    problem, pool, cache, patches = fixture
    config = Config()
    config.models.primary = EndpointConfig(model=f"scripted:{FIXTURES / 'policies' / policy}")
    for k, v in selection.items():
        setattr(config.selection, k, v)
    store = RunStore(tmp_path / "run")
    hub = ModelHub(config.models, CallLog(store), CostTracker())
    rec = run_selection(
        problem, cs or candidate_set(patches), hub, pool, store, config, cache=cache
    )
    return rec, hub, store


def base_files(fixture):
    """The fixture repository's files at the base commit (its working tree)."""
    repo = fixture[0].repo_path

    def read(path: str) -> bytes | None:
        f = repo / path
        return f.read_bytes() if f.is_file() else None

    return read


def ids(fixture) -> dict[str, str]:
    """Candidate ids as selection computes them: from the files each patch produces."""
    return {name: candidate_id(p, base_files(fixture)) for name, p in fixture[3].items()}


def test_selector_picks_the_correct_candidate_among_decoys(tmp_path, fixture):
    problem, pool, cache, patches = fixture
    rec, hub, store = select(tmp_path, fixture, "sel_discriminate.py")
    cid = ids(fixture)

    # decoys handled before voting: empty dropped, whitespace duplicate merged, silencer stripped
    stale = candidate_id(STALE, base_files(fixture))
    assert {c.id for c in rec.candidates} == {
        cid["noop"],
        cid["breaks_odd"],
        cid["hack"],
        cid["correct"],
        stale,
    }
    assert [c.sources for c in rec.candidates if c.id == cid["hack"]] == [["sysH", "sysH2"]]
    assert [(s.original_id, s.new_id, s.removed_files) for s in rec.stripped] == [
        (candidate_id(patches["silencer"]), None, ["tests/test_stats.py"])  # its input id
    ]

    # the matrix: the repro fails on the original, the odd check passes there (strict: no vote)
    assert rec.matrix.original(REPRO.digest).verdict == "unfixed"
    assert rec.matrix.original(ODD_STILL_WORKS.digest).verdict == "fixed"
    assert rec.matrix.cell(cid["breaks_odd"], ODD_STILL_WORKS.digest).verdict == "unfixed"
    assert rec.votes == {
        cid["noop"]: 0,
        cid["breaks_odd"]: 1,
        cid["hack"]: 1,
        cid["correct"]: 1,
        stale: 0,
    }
    # a patch that does not apply is a recorded result, ranked last
    assert rec.matrix.outcome_vector(stale) == ("no-apply", "no-apply")
    assert "stats.py" in rec.matrix.cell(stale, REPRO.digest).output_tail
    assert rec.ranking[-1].id == stale and not rec.ranking[-1].applies
    # the repository's own test of odd lengths: breaks_odd breaks it, the others do not
    reg = rec.regression
    assert reg is not None and reg.framework == "unittest"
    assert reg.test_files == ["tests/test_stats.py"] and reg.flaky == []
    odd = "tests.test_stats.StatsTest.test_median_odd"
    assert reg.candidates[cid["breaks_odd"]].regressions == [odd]
    assert {c: reg.regressions_of(c) for c in (cid["hack"], cid["correct"], cid["noop"])} == {
        cid["hack"]: 0,
        cid["correct"]: 0,
        cid["noop"]: 0,
    }
    assert reg.candidates[stale].status == "no-apply"
    # each distinct (patch, test) pair ran once: 6 rows x 2 tests; the related repository
    # tests twice on the original and once per candidate; the selector's test on 3 rows
    assert rec.executions == 6 * 2 + 2 + 5 + 3
    sizes = {m: cl.size for cl in rec.clusters for m in cl.members}
    assert sizes[cid["hack"]] == sizes[cid["correct"]] == 2  # same outcomes on these tests
    # fusion: breaks_odd dropped for its regression, the no-op for having no vote; votes
    # and regressions cannot tell the hack from the fix (2 sources are no tie-break)
    assert set(rec.top_k) == {cid["hack"], cid["correct"]}
    assert set(rec.fusion.tied_best()) == {cid["hack"], cid["correct"]}
    dropped = {e.id: e.why for e in rec.fusion.ranking if not e.kept}
    assert set(dropped) == {cid["breaks_odd"], cid["noop"], stale}
    assert "breaks 1 existing test" in dropped[cid["breaks_odd"]]

    assert not rec.fallback, rec.reason
    assert rec.chosen_id == cid["correct"]
    assert rec.chosen_patch == patches["correct"]
    assert len(rec.selector_tests) == 1
    runs = rec.selector_tests[0].runs
    assert runs["original"].verdict == "unfixed" and runs[cid["correct"]].verdict == "fixed"
    assert (
        runs[cid["hack"]].verdict == "unfixed"
        and "median([1, 5, 2, 8]) = 5" in runs[cid["hack"]].output_tail
    )
    # the selector saw the original source of the file the candidates touch, and the votes
    prompt = rec.transcript[1].content
    assert "def median(xs):" in prompt
    assert f'<candidate id="{cid["hack"]}" votes="1" regressions="0">' in prompt
    assert "sysH" not in prompt and "proposed" not in prompt  # who proposed it is not shown
    assert [c["stage"] for c in hub.calls.records()] == ["selection", "selection"]

    # the chosen patch really fixes the bug without breaking the suite
    with pool.lease() as sb:
        fixed = run_script(
            sb,
            rec.chosen_patch,
            Script(
                content="import sys\nsys.path.insert(0, '.')\nimport unittest\nfrom calc.stats import median\nassert median([1, 2, 3, 4]) == 2.5\nunittest.main(module='tests.test_stats', exit=True)\n"
            ),
            60,
        )
    assert fixed.exit_code == 0, fixed.output

    # saved, and answered from the record on a re-run (no new model call)
    saved = store.load_record(
        problem.id, "selection", SelectionRecord, Config(models=hub.config).fingerprint("selection")
    )
    assert saved is not None and saved.chosen_id == cid["correct"]
    again = run_selection(
        problem, candidate_set(patches), hub, pool, store, Config(models=hub.config), cache=cache
    )
    assert again.chosen_id == cid["correct"] and len(hub.calls.records()) == 2


@pytest.mark.parametrize(
    ("policy", "kind", "calls"),
    [
        ("sel_invalid_id.py", "invalid-id", 3),
        ("sel_misparse.py", "misparse", 3),
        ("sel_tests_forever.py", "attempts-exhausted", 3),
        ("sel_model_error.py", "model-error", 0),
        ("sel_outgrows_context.py", "context-length", 1),
        ("sel_cost_cap.py", "budget", 1),
    ],
)
def test_fallbacks_choose_the_top_voted_candidate_and_say_why(
    tmp_path, fixture, policy, kind, calls
):
    _, _, _, patches = fixture
    rec, hub, _ = select(tmp_path, fixture, policy, attempts=3)
    assert rec.fallback and rec.fallback_kind == kind
    assert rec.chosen_id == rec.top_k[0]
    assert set(rec.top_k) == {ids(fixture)["hack"], ids(fixture)["correct"]}
    assert rec.reason.startswith("fell back to the top-voted candidate")
    assert len(hub.calls.records()) == calls == rec.selector_attempts
    if kind in ("context-length", "budget"):  # the test it wrote ran and is kept
        assert len(rec.selector_tests) == 1 and rec.transcript[-1].role == "user"
    if kind in ("invalid-id", "misparse"):
        corrections = [m.content for m in rec.transcript if m.role == "user"][1:]
        assert len(corrections) == 2 and (
            "not one of the candidate ids" in corrections[0] or "could not find" in corrections[0]
        )
        assert "last reply" in corrections[-1]


def test_one_candidate_is_chosen_without_a_model_call(tmp_path, fixture):
    _, _, _, patches = fixture
    cs = CandidateSet()
    cs.add_patch(patches["correct"], "only")
    cs.add_test(REPRO)
    rec, hub, _ = select(tmp_path, fixture, "sel_model_error.py", cs=cs)
    assert rec.chosen_id == ids(fixture)["correct"] and not rec.fallback
    assert hub.calls.records() == [] and rec.transcript == []


def test_ensemble_from_prediction_files_generates_tests_and_exports_the_fix(tmp_path, fixture):
    """Other systems' predictions (JSONL + preds.json) without tests: the testing state
    machine writes one, selection tells the candidates apart, the export holds the fix."""
    import json

    from codemonkeys.ensemble import ensemble_problem, load_predictions, merge_candidates
    from codemonkeys.predictions import export_predictions

    problem, pool, cache, patches = fixture
    iid = problem.id
    a = tmp_path / "sysA" / "all_preds.jsonl"
    a.parent.mkdir()
    a.write_text(
        "".join(
            json.dumps({"instance_id": iid, "model_name_or_path": name, "model_patch": p}) + "\n"
            for name, p in [("sysA", patches["hack"]), ("sysA2", "")]
        )
    )
    b = tmp_path / "sysB" / "preds.json"
    b.parent.mkdir()
    b.write_text(
        json.dumps(
            {
                iid: {
                    "instance_id": iid,
                    "model_name_or_path": "sysB",
                    "model_patch": patches["correct"],
                }
            }
        )
    )
    # sysD proposes the same fix as sysB, formatted by another tool (1 line of context)
    repo = problem.repo_path
    correct_u1 = _diff(repo, STATS.replace(MEDIAN_OLD, PATCHED["correct"]), context=1)
    assert correct_u1 != patches["correct"]
    d = {iid: [("sysD", correct_u1)]}
    merged, report = merge_candidates([load_predictions(a), load_predictions(b), d])
    assert (report.total, report.empty, report.distinct) == (4, 1, 3)
    cs = merged[iid]
    cs.add_patch(patches["breaks_odd"], "sysC")
    assert cs.tests == []

    config = Config()
    config.models.primary = EndpointConfig(
        model=f"scripted:{FIXTURES / 'policies' / 'sel_ensemble.py'}"
    )
    config.selection.ensemble_test_trajectories = 2
    store = RunStore(tmp_path / "run")
    hub = ModelHub(config.models, CallLog(store), CostTracker())
    rec = ensemble_problem(problem, cs, hub, pool, store, config, cache=cache)

    assert (
        len(rec.tests) == 1 and "median([1, 2, 3, 4])" in rec.tests[0].content
    )  # two identical, counted once
    assert rec.matrix.original(rec.tests[0].digest).verdict == "unfixed"
    assert sorted(rec.votes.values()) == [1, 1, 1]  # one fix, one candidate, one slot
    assert [c.sources for c in rec.candidates if c.id == ids(fixture)["correct"]] == [
        ["sysB", "sysD"]
    ]
    assert not rec.fallback and rec.chosen_patch == patches["correct"]
    stages = [c["stage"] for c in hub.calls.records()]
    assert stages.count("selection") == 2 and len(stages) == 6  # 2 testing machines x 2 calls

    out = export_predictions({iid: rec}, tmp_path / "preds.jsonl", "cm-ensemble")
    assert load_predictions(out) == {iid: [("cm-ensemble", patches["correct"])]}


def test_original_files_are_read_from_a_sandbox_when_there_is_no_local_repo(fixture):
    """SWE-bench problems have no local checkout: the selector's file view comes from a
    clean lease, at the base commit, and a file a candidate creates is marked as new."""
    from codemonkeys.selection.stage import read_original_files

    problem, pool, _, _ = fixture
    image_problem = problem.model_copy(update={"repo_path": None})
    files = read_original_files(
        image_problem, pool, ["calc/stats.py", "calc/new.py"], budget=10_000
    )
    assert [(f.path, f.content) for f in files] == [("calc/stats.py", STATS), ("calc/new.py", None)]
    tight = read_original_files(problem, pool, ["calc/stats.py"], budget=10)
    assert tight[0].truncated and tight[0].content == ""


def _plausible_vs_right(patches: dict[str, str]) -> CandidateSet:
    """A plausible wrong fix (averages the middle pair for every length: passes the
    reproduction, breaks the repository's odd-length test), proposed by two systems, and
    the right fix, proposed by one. Only the reproduction test votes."""
    cs = CandidateSet()
    cs.add_patch(patches["breaks_odd"], "sysB")
    cs.add_patch(patches["breaks_odd"], "sysB2")
    cs.add_patch(patches["correct"], "sysC")
    cs.add_test(REPRO)
    return cs


def test_fused_rule_drops_a_plausible_fix_that_breaks_an_existing_test(tmp_path, fixture):
    _, _, _, patches = fixture
    cid = ids(fixture)
    cs = _plausible_vs_right(patches)

    # votes alone cannot tell them apart: both pass the reproduction; the selector is needed
    rec, hub, _ = select(tmp_path / "votes", fixture, "sel_model_error.py", cs=cs, fusion="votes")
    assert rec.votes == {cid["breaks_odd"]: 1, cid["correct"]: 1}
    assert set(rec.fusion.tied_best()) == set(rec.top_k) == {cid["breaks_odd"], cid["correct"]}
    assert rec.fallback and rec.fallback_kind == "model-error"

    # fused: the existing test breaks with the plausible fix only, so it is dropped and the
    # right fix is chosen without needing the selector
    rec, hub, store = select(tmp_path / "fused", fixture, "sel_model_error.py", cs=cs)
    odd = "tests.test_stats.StatsTest.test_median_odd"
    assert rec.regression.candidates[cid["breaks_odd"]].regressions == [odd]
    assert rec.regression.candidates[cid["correct"]].regressions == []
    assert rec.fusion.kept == [cid["correct"]] and rec.top_k == [cid["correct"]]
    assert rec.chosen_id == cid["correct"] and not rec.fallback
    assert hub.calls.records() == []
    # the verdicts are in selection.json
    saved = store.record_data("calc-median", "selection")
    assert saved["regression"]["candidates"][cid["breaks_odd"]]["regressions"] == [odd]
    assert [e["id"] for e in saved["fusion"]["ranking"] if e["kept"]] == [cid["correct"]]


def test_regression_override_command_and_budget(tmp_path, fixture):
    _, _, _, patches = fixture
    cid = ids(fixture)
    cs = _plausible_vs_right(patches)
    rec, _, _ = select(
        tmp_path / "cmd",
        fixture,
        "sel_model_error.py",
        cs=cs,
        regression_tests=["tests/test_stats.py"],
        regression_command="python -m unittest -v {tests} 2>&1; echo done",
    )
    reg = rec.regression
    assert reg.framework == "custom" and reg.source == "config"
    assert reg.command == "python -m unittest -v tests/test_stats.py 2>&1; echo done"
    assert reg.original_runs[0].parser == "unittest"
    assert reg.candidates[cid["breaks_odd"]].regressions  # outcomes parsed from the report
    assert rec.chosen_id == cid["correct"]

    # a budget spent before the runs: no evidence, no candidate dropped for it
    rec, _, _ = select(
        tmp_path / "budget", fixture, "sel_model_error.py", cs=cs, regression_budget_s=0.5
    )
    assert rec.regression.skipped_reason.startswith("the time budget ran out")
    assert {c.status for c in rec.regression.candidates.values()} == {"not-run"}
    assert set(rec.fusion.kept) == {cid["breaks_odd"], cid["correct"]}


def test_ensembling_sends_every_distinct_patch_to_the_selector(tmp_path, fixture):
    """Not only the top 3 by votes: up to ``selection.ensemble_top_k`` (default 5)."""
    from codemonkeys.ensemble import ensemble_problem

    problem, pool, cache, patches = fixture
    cid = ids(fixture)
    cs = CandidateSet()
    for name in ("hack", "noop", "breaks_odd", "correct"):
        cs.add_patch(patches[name], f"sys-{name}")
    cs.add_test(REPRO)
    config = Config()
    config.models.primary = EndpointConfig(
        model=f"scripted:{FIXTURES / 'policies' / 'sel_discriminate.py'}"
    )
    config.selection.fusion = "votes"
    assert config.selection.top_k == 3
    store = RunStore(tmp_path / "run")
    hub = ModelHub(config.models, CallLog(store), CostTracker())
    rec = ensemble_problem(problem, cs, hub, pool, store, config, cache=cache)
    assert set(rec.top_k) == {cid[n] for n in ("hack", "noop", "breaks_odd", "correct")}
    prompt = rec.transcript[1].content
    assert prompt.count("<candidate id=") == 4
    assert rec.chosen_id == cid["correct"] and not rec.fallback
