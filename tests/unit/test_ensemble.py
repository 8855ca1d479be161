"""Ensembling input/output on the two complete leaderboard prediction files."""

from __future__ import annotations

import json

import pytest

from codemonkeys.candidates import CandidateSet
from codemonkeys.ensemble import (
    expected_random_pick_rate,
    greedy_systems,
    load_predictions,
    merge_candidates,
    oracle_coverage,
    random_pick_simulation,
)
from codemonkeys.execution import Script
from codemonkeys.predictions import PredictionsError, export_predictions
from tests.conftest import SHARED_DATA

MINI_FILE = "leaderboard/20251118_mini-swe-agent_gemini-3-pro-preview/all_preds.jsonl"
HYBRID_FILE = "leaderboard/20251227_hybrid-ensemble-haiku/all_preds.jsonl"
MINI = SHARED_DATA / MINI_FILE
HYBRID = SHARED_DATA / HYBRID_FILE


@pytest.fixture
def leaderboard_files(shared_data) -> None:
    shared_data(MINI_FILE)
    shared_data(HYBRID_FILE)


needs_data = pytest.mark.usefixtures("leaderboard_files")


@needs_data
def test_two_leaderboard_files_merge_with_exact_counts():
    mini, hybrid = load_predictions(MINI), load_predictions(HYBRID)
    assert len(mini) == len(hybrid) == 500
    assert {name for rows in mini.values() for name, _ in rows} == {
        "mini-swe-agent-1.15.0__gemini-3-pro-preview"
    }
    merged, report = merge_candidates([mini, hybrid])
    # independent count straight from the files
    rows = [
        json.loads(ln) for f in (MINI, HYBRID) for ln in f.read_text().splitlines() if ln.strip()
    ]
    empty = sum(1 for r in rows if not (r["model_patch"] or "").strip())
    assert (report.total, report.empty) == (1000, empty) == (1000, 1)
    assert report.distinct + report.duplicates + report.empty == report.total
    assert report.distinct == sum(len(cs.candidates) for cs in merged.values())
    assert report.instances == 500
    # the instance whose mini-swe-agent patch is empty keeps only hybrid's candidate
    empty_id = next(r["instance_id"] for r in rows if not (r["model_patch"] or "").strip())
    assert [c.sources for c in merged[empty_id].candidates] == [["hybrid-ensemble-haiku"]]
    # duplicates keep both systems as sources
    shared = [c for cs in merged.values() for c in cs.candidates if len(c.sources) == 2]
    assert len(shared) == report.duplicates > 0


@needs_data
def test_export_round_trips_jsonl_and_json_dict(tmp_path):
    hybrid = load_predictions(HYBRID)
    chosen = {iid: rows[0][1] for iid, rows in hybrid.items()}
    j = export_predictions(chosen, tmp_path / "out.jsonl", "cm-ensemble", fmt="jsonl")
    d = export_predictions(chosen, tmp_path / "out.json", "cm-ensemble", fmt="json")
    assert (
        json.loads(d.read_text())["astropy__astropy-12907"]["model_name_or_path"] == "cm-ensemble"
    )
    back_j, back_d = load_predictions(j), load_predictions(d)
    assert back_j == back_d == {iid: [("cm-ensemble", p)] for iid, p in chosen.items()}
    # and the harness's JSONL re-exported as a dict reads back identically
    again = export_predictions(
        {k: v[0][1] for k, v in back_d.items()}, tmp_path / "again.jsonl", "cm-ensemble"
    )
    assert again.read_text() == j.read_text()


def test_mini_swe_agent_preds_json_and_name_fallback(tmp_path):
    folder = tmp_path / "my-system"
    folder.mkdir()
    preds = {
        "a__a-1": {
            "model_name_or_path": "mini",
            "instance_id": "a__a-1",
            "model_patch": "diff --git a/x b/x\n",
        },
        "a__a-2": {"instance_id": "a__a-2", "model_patch": None},
    }
    (folder / "preds.json").write_text(json.dumps(preds, indent=2))
    loaded = load_predictions(folder / "preds.json")
    assert loaded == {"a__a-1": [("mini", "diff --git a/x b/x\n")], "a__a-2": [("my-system", "")]}
    assert load_predictions(folder / "preds.json", system_name="S")["a__a-1"] == [
        ("S", "diff --git a/x b/x\n")
    ]


@pytest.mark.parametrize(
    ("text", "where"),
    [
        (
            '{"instance_id": "a", "model_patch": ""}\n{"instance_id": "b", "model_patch": "x"\n',
            ":2: invalid JSON",
        ),
        (
            '{"instance_id": "a", "model_patch": ""}\n{"model_patch": "x"}\n',
            ":2: missing or non-string 'instance_id'",
        ),
        (
            '{"instance_id": "a", "model_patch": ""}\n{"instance_id": "b"}\n',
            ":2: missing 'model_patch'",
        ),
        ('{"a": {"instance_id": "b", "model_patch": ""}}', "key 'a' does not match"),
        ('{"a": {"instance_id": "a", "model_patch": 3}}', "is a int, expected a string"),
        ("[1]", "item 0: expected an object"),
    ],
)
def test_malformed_rows_name_file_and_line(tmp_path, text, where):
    f = tmp_path / "bad.jsonl"
    f.write_text(text)
    with pytest.raises(PredictionsError) as e:
        load_predictions(f)
    assert str(f) in str(e.value) and where in str(e.value)


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(PredictionsError, match="not found"):
        load_predictions(tmp_path / "nope.jsonl")


def test_merge_with_own_run_keeps_tests_and_sources():
    own = CandidateSet()
    own.add_patch("diff --git a/f.py b/f.py\n+x = 1\n", "codemonkeys:traj-0")
    own.add_test(Script(content="print(1)"))
    other = {"i": [("sysA", "diff --git a/f.py b/f.py\r\n+x = 1   \r\n"), ("sysB", "  \n")]}
    merged, report = merge_candidates([other], {"i": own})
    assert (report.total, report.empty, report.duplicates, report.distinct) == (3, 1, 1, 1)
    assert merged["i"].candidates[0].sources == ["codemonkeys:traj-0", "sysA"]
    assert merged["i"].tests == own.tests
    only, _ = merge_candidates([other], {"i": own}, instance_ids=["j"])
    assert only == {}


def test_coverage_and_random_pick_on_a_small_matrix():
    resolved = {"A": {"1", "2"}, "B": {"2", "3"}, "C": set()}
    ids = ["1", "2", "3", "4"]
    assert oracle_coverage(resolved, ["A", "B"], ids) == 0.75
    # per instance: 1 -> 1/2, 2 -> 2/2, 3 -> 1/2, 4 -> 0
    assert expected_random_pick_rate(resolved, ["A", "B"], ids) == 0.5
    assert expected_random_pick_rate(resolved, ["A", "B", "C"], ids) == pytest.approx(1 / 3)
    assert abs(random_pick_simulation(resolved, ["A", "B"], ids, trials=2000) - 0.5) < 0.03
    assert greedy_systems(resolved, ids, 2) == ["A", "B"]


def test_a_malformed_row_is_recorded_and_the_others_are_read(tmp_path):
    f = tmp_path / "sys-x.jsonl"
    f.write_text(
        '{"instance_id": "a", "model_patch": "diff a"}\n'
        '{"instance_id": "b"}\n'
        "{not json\n"
        '{"instance_id": "c", "model_patch": "diff c"}\n'
    )
    rejected: list[str] = []
    preds = load_predictions(f, rejected=rejected)
    assert preds == {"a": [("sys-x", "diff a")], "c": [("sys-x", "diff c")]}
    assert len(rejected) == 2
    assert f"{f}:2: missing 'model_patch'" in rejected[0]
    assert f"{f}:3: invalid JSON" in rejected[1]
