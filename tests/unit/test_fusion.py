"""The fused rule on crafted evidence (no sandbox, no model)."""

from __future__ import annotations

from codemonkeys.selection.fusion import fuse


def ranked(ids, votes, regressions, *, clusters=None, applies=None, rule="regressions-then-votes"):
    evidence = [
        {c: {"votes": n} for c, n in votes.items()},
        {c: {"cluster_size": n} for c, n in (clusters or {}).items()},
        {c: {"applies": a} for c, a in (applies or {}).items()},
        {c: {"regressions": n} for c, n in regressions.items()},
    ]
    fused = fuse(ids, evidence, rule)
    return [e.id for e in fused.ranking], fused.kept, fused


def test_a_candidate_that_breaks_tests_is_dropped_when_another_does_not():
    order, kept, fused = ranked(
        ["plausible", "right"], {"plausible": 3, "right": 2}, {"plausible": 1, "right": 0}
    )
    assert kept == ["right"] and order == ["right", "plausible"]
    assert fused.top_k(3) == ["right"]
    assert "breaks 1 existing test" in fused.ranking[1].why
    # the paper's rule listens to votes only
    order, kept, _ = ranked(
        ["plausible", "right"],
        {"plausible": 3, "right": 2},
        {"plausible": 1, "right": 0},
        rule="votes",
    )
    assert kept == order == ["plausible", "right"]


def test_when_every_candidate_breaks_tests_the_least_damaging_stay_then_votes():
    order, kept, _ = ranked(["a", "b", "c"], {"a": 1, "b": 2, "c": 5}, {"a": 2, "b": 2, "c": 7})
    assert kept == ["b", "a"] and order == ["b", "a", "c"]


def test_a_no_op_breaks_nothing_but_cannot_beat_a_supported_fix():
    order, kept, _ = ranked(["noop", "fix"], {"noop": 0, "fix": 2}, {"noop": 0, "fix": 1})
    assert kept == ["fix"] and order == ["fix", "noop"]


def test_without_votes_regressions_decide():
    order, kept, _ = ranked(["a", "b"], {}, {"a": 1, "b": 0})
    assert kept == ["b"]


def test_no_regression_evidence_counts_as_breaking_nothing():
    _, kept, fused = ranked(["a", "b"], {"a": 1, "b": 1}, {"a": None, "b": 0})
    assert set(kept) == {"a", "b"}
    assert next(e for e in fused.ranking if e.id == "a").why == "no regression evidence"


def test_patches_that_never_apply_are_set_aside_unless_nothing_else_is_left():
    order, kept, _ = ranked(["x", "y"], {"x": 0, "y": 0}, {}, applies={"x": False, "y": True})
    assert kept == ["y"] and order == ["y", "x"]
    _, kept, _ = ranked(["x"], {}, {}, applies={"x": False})
    assert kept == ["x"]


def test_order_votes_then_cluster_then_id_and_ties_for_the_expectation():
    order, kept, fused = ranked(
        ["d", "c", "b", "a"], {"a": 2, "b": 2, "c": 2, "d": 1}, {}, clusters={"c": 2, "b": 2}
    )
    assert order == ["b", "c", "a", "d"]
    assert set(fused.tied_best()) == {"a", "b", "c"}
