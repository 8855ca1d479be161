"""Parsing relevance answers and rankings; merging rankings."""

from __future__ import annotations

import json

import pytest

from codemonkeys.context.ranking import merge_rankings, parse_ranking
from codemonkeys.context.relevance import parse_relevance


def test_relevance_decision_anywhere_with_multiline_summary():
    text = (
        "Thinking... the file defines parse_date.\n"
        "SUMMARY: Defines parse_date.\nThe regex needs changing.\n\n"
        "DECISION: **RELEVANT**\nAnything else?"
    )
    status, summary = parse_relevance(text)
    assert status == "relevant"
    assert summary == "Defines parse_date.\nThe regex needs changing."


def test_relevance_not_relevant_variants():
    assert parse_relevance("SUMMARY: x\nDECISION: NOT RELEVANT")[0] == "not_relevant"
    assert parse_relevance("decision - not_relevant")[0] == "not_relevant"
    assert parse_relevance("Decision: irrelevant.")[0] == "not_relevant"
    assert parse_relevance("Summary: nothing here\n\nNOT RELEVANT\n")[0] == "not_relevant"
    # decision first, summary after
    status, summary = parse_relevance("DECISION: RELEVANT\nSUMMARY: the model class.")
    assert status == "relevant" and summary == "the model class."


def test_relevance_last_decision_wins_and_format_echo_is_ignored():
    text = "The format is DECISION: RELEVANT or NOT RELEVANT.\nSUMMARY: s\nDECISION: NOT RELEVANT"
    assert parse_relevance(text)[0] == "not_relevant"
    assert parse_relevance("DECISION: RELEVANT or NOT RELEVANT")[0] is None


def test_relevance_unparsable():
    assert parse_relevance("I cannot tell.")[0] is None
    assert parse_relevance("")[0] is None


KNOWN = {"a.py", "b/c.py", "d.js"}


def test_ranking_json_in_fence_drops_invented():
    text = 'Reasoning [not json]...\n```json\n["b/c.py", "ghost.py", "a.py", "a.py"]\n```'
    assert parse_ranking(text, KNOWN) == (["b/c.py", "a.py"], ["ghost.py"])


def test_ranking_bare_json_and_line_lists():
    assert parse_ranking('Here: ["./d.js", "a.py"] done', KNOWN) == (["d.js", "a.py"], [])
    text = "My ranking:\n1. `b/c.py` - the core\n2. d.js\n- nope.py\n"
    assert parse_ranking(text, KNOWN) == (["b/c.py", "d.js"], [])
    assert parse_ranking("no idea", KNOWN) is None
    assert parse_ranking('["x.py", "y.py"]', KNOWN) is None  # only invented paths


def test_merge_mean_relative_rank():
    base = ["a", "b", "c", "d"]
    r1 = ["a", "b", "c"]  # a=0, b=1/3, c=2/3
    r2 = ["c", "b", "a"]  # c=0, b=1/3, a=2/3
    r3 = ["b"]  # b=0, others missing -> 1.0
    merged = merge_rankings([r1, r2, r3], base)
    # b: (1/3+1/3+0)/3=0.22; a: (0+2/3+1)/3=0.56; c: (2/3+0+1)/3=0.56 (tie: base order)
    assert merged == ["b", "a", "c", "d"]  # d never ranked: last
    assert merge_rankings([], base) == base


# Quadratic parsing took 382 s for 200k invented paths; linear parsing takes well under a
# second. The timeout only stops a regression from hanging the suite (figures: the
# benchmark tests/benchmarks/bench_ranking_parse.py).
@pytest.mark.timeout(60)
def test_ranking_parse_and_merge_handle_a_200k_line_answer():
    known = {f"src/mod{i}.py" for i in range(100_000)}
    invented = [f"src/invented/p{i}.py" for i in range(200_000)]
    ranked = sorted(known, reverse=True)
    answer = "```json\n" + json.dumps(invented + ranked + ranked[:10]) + "\n```"
    ranking, dropped = parse_ranking(answer, known)
    assert ranking == ranked and dropped == invented

    lines = "\n".join(f"{i + 1}. {p}" for i, p in enumerate(ranked + ranked))
    assert parse_ranking(lines, known) == (ranked, [])

    assert merge_rankings([ranked, ranked[:50_000]], sorted(known)) == ranked
