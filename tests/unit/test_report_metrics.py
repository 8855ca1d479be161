"""Metric functions of codemonkeys.report, checked against hand-computed values."""

from __future__ import annotations

import math

import pytest

from codemonkeys.report import (
    attempt_curves,
    coverage,
    majority_vote_expectation,
    pass_at_k,
    pass_at_k_curve,
    random_pick_expectation,
    resolve_rate,
    selection_accuracy,
    weighted_random_pick_expectation,
)


def test_pass_at_k_matches_the_binomial_formula():
    # n=10, c=3: pass@1 = 3/10; pass@2 = 1 - C(7,2)/C(10,2) = 1 - 21/45.
    assert pass_at_k(10, 3, 1) == pytest.approx(0.3)
    assert pass_at_k(10, 3, 2) == pytest.approx(1 - 21 / 45)
    for k in range(1, 11):
        exact = 1 - math.comb(7, k) / math.comb(10, k)
        assert pass_at_k(10, 3, k) == pytest.approx(exact)


def test_pass_at_k_edges():
    assert pass_at_k(10, 0, 5) == 0.0
    assert pass_at_k(10, 10, 1) == 1.0
    assert pass_at_k(10, 3, 8) == 1.0  # fewer than 8 wrong samples: any 8 include a right one
    assert pass_at_k(0, 0, 1) == 0.0  # nothing generated
    assert pass_at_k(4, 1, 99) == 1.0  # k clamped to n
    with pytest.raises(ValueError):
        pass_at_k(3, 4, 1)


def test_pass_at_k_is_stable_for_large_n():
    # C(5000, 2500) overflows a float; the product form does not.
    assert pass_at_k(5000, 1, 1) == pytest.approx(1 / 5000)
    assert pass_at_k(5000, 2500, 2500) == pytest.approx(1.0)
    assert 0.0 < pass_at_k(5000, 3, 10) < 0.01


def test_pass_at_k_curve_averages_and_clamps_k_to_each_problem():
    # Problem A: n=2, c=1; problem B: n=4, c=0.
    # k=1: (1/2 + 0)/2; k=2: (1 + 0)/2; k=3,4: A has no more samples, stays at 1.
    assert pass_at_k_curve([(2, 1), (4, 0)]) == pytest.approx([0.25, 0.5, 0.5, 0.5])
    assert pass_at_k_curve([]) == []


def test_rates_on_a_small_hand_computed_example():
    labels = [[True, False], [False, False, True, True], []]
    assert resolve_rate([True, False, False]) == pytest.approx(1 / 3)
    assert resolve_rate([]) is None
    assert coverage(labels) == pytest.approx(2 / 3)
    # 1/2, 2/4, and 0 for the problem without candidates.
    assert random_pick_expectation(labels) == pytest.approx(1 / 3)
    assert random_pick_expectation([]) is None
    # chosen right on 1 of the 2 covered problems; the uncovered one does not count.
    assert selection_accuracy([True, False, False], [True, True, False]) == pytest.approx(0.5)
    assert selection_accuracy([False], [False]) is None


def test_weighted_random_pick_counts_trajectories():
    # A correct candidate from 3 trajectories and a wrong one from 1: 3/4; then 0.
    assert weighted_random_pick_expectation(
        [[(True, 3), (False, 1)], [(False, 2)]]
    ) == pytest.approx(0.375)
    # The same candidates unweighted would give 1/4 overall.
    assert random_pick_expectation([[True, False], [False]]) == pytest.approx(0.25)


def test_majority_vote_breaks_ties_uniformly():
    labels = {"a": True, "b": False, "c": True}
    assert majority_vote_expectation({"a": 3, "b": 3, "c": 1}, labels) == pytest.approx(0.5)
    assert majority_vote_expectation({"a": 1, "b": 3}, labels) == 0.0
    assert majority_vote_expectation({}, labels) == 0.0


def test_attempt_curves_keep_the_last_edit_of_a_stopped_trajectory():
    problems = [
        [[False, True], [False]],  # trajectory 0 fixed at attempt 2; trajectory 1 never
        [[False, False, True]],  # fixed at attempt 3
    ]
    cov, p1 = attempt_curves(problems)
    assert cov == pytest.approx([0.0, 0.5, 1.0])
    assert p1 == pytest.approx([0.0, 0.25, 0.75])
    # A problem with no trajectories counts as 0 everywhere.
    cov2, _ = attempt_curves([*problems, []])
    assert cov2 == pytest.approx([0.0, 1 / 3, 2 / 3])
