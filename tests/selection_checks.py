"""Checks shared by the end-to-end tests: the chosen candidate won because of the test
matrix and the selector, read from a problem's ``selection.json``."""

from __future__ import annotations

import json
from pathlib import Path


def load_selection(run_dir: Path, problem_id: str) -> dict:
    return json.loads((run_dir / "problems" / problem_id / "selection.json").read_text())["data"]


def candidate_of(selection: dict, source: str) -> str:
    """The id of the candidate ``source`` (e.g. ``codemonkeys:traj-1``) proposed."""
    [cid] = [c["id"] for c in selection["candidates"] if source in c["sources"]]
    return cid


def assert_chosen_by_the_selector(selection: dict, right: str, wrong: list[str]) -> None:
    """The selector wrote a test, saw it pass only on ``right`` (and fail on the original
    code and on every ``wrong`` candidate), and chose ``right`` from those runs."""
    assert not selection["fallback"], selection["reason"]
    assert selection["chosen_id"] == right
    assert len(selection["selector_tests"]) >= 1
    runs = selection["selector_tests"][-1]["runs"]
    assert runs["original"]["verdict"] == "unfixed"
    assert runs[right]["verdict"] == "fixed"
    for cid in wrong:
        assert runs[cid]["verdict"] != "fixed", cid
    transcript = selection["transcript"]
    assert transcript[-1]["role"] == "assistant"
    assert f"<choice>{right}</choice>" in transcript[-1]["content"]
    shown = transcript[-2]["content"]  # the runs the selector saw before choosing
    assert f'<run on="{right}" verdict="fixed"' in shown
    assert '<run on="original code" verdict="unfixed"' in shown
