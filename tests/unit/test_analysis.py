"""The analysis functions on crafted cases: pass@k, the power-law fit and forecast, the
stop rule, and what-if subsampling (hand-computed numbers)."""

from __future__ import annotations

import itertools
import math

import pytest

from codemonkeys.analysis.forecast import fit_power_law, forecast_coverage
from codemonkeys.analysis.passk import pass_at_k, pass_at_k_curve, subset_expectation
from codemonkeys.analysis.whatif import (
    ProblemOutcome,
    TrajectoryOutcome,
    WhatIfConfig,
    evaluate_config,
    what_if,
)
from codemonkeys.generation.records import ClusterEvidence, WaveEvidence
from codemonkeys.generation.stopping import StopRule, decide

# --- pass@k -------------------------------------------------------------------------------


@pytest.mark.parametrize("n,c,k", [(10, 1, 5), (10, 3, 2), (7, 0, 3), (5, 5, 1), (6, 2, 6)])
def test_pass_at_k_equals_the_share_of_subsets_with_a_correct_sample(n, c, k):
    subsets = list(itertools.combinations(range(n), k))
    brute = sum(any(i < c for i in s) for s in subsets) / len(subsets)
    assert pass_at_k(n, c, k) == pytest.approx(brute)


def test_pass_at_k_hand_values_and_clamping():
    assert pass_at_k(10, 1, 5) == pytest.approx(0.5)
    assert pass_at_k(4, 1, 1) == pytest.approx(0.25)
    assert pass_at_k(3, 1, 9) == 1.0  # k > n draws all
    assert pass_at_k(0, 0, 1) == 0.0
    with pytest.raises(ValueError):
        pass_at_k(3, 4, 1)
    assert pass_at_k_curve([(4, 1), (4, 0)], 2) == pytest.approx([0.125, 0.25])


def test_subset_expectation_exact_and_sampled_agree_with_pass_at_k():
    def score(s):
        return float(any(i < 3 for i in s))

    assert subset_expectation(12, 4, score) == pytest.approx(pass_at_k(12, 3, 4))
    sampled = subset_expectation(12, 4, score, max_exact=10, draws=4000, seed=1)
    assert sampled == pytest.approx(pass_at_k(12, 3, 4), abs=0.03)


# --- the power law --------------------------------------------------------------------


def _law(k, a=2.0, b=-0.5):
    return math.exp(-a * k**b)


def test_fit_recovers_an_exact_power_law_and_extrapolates_it():
    curve = [_law(k) for k in range(1, 6)]
    fit = fit_power_law(curve)
    assert fit is not None and fit.points == 5
    assert fit.slope == pytest.approx(-0.5)
    assert fit.intercept == pytest.approx(math.log(2.0))
    assert fit.coverage(20) == pytest.approx(_law(20))


def test_fit_on_a_prefix_ignores_later_points():
    curve = [_law(k) for k in range(1, 6)] + [0.01] * 5  # garbage after k = 5
    assert fit_power_law(curve, k_max=5).coverage(10) == pytest.approx(_law(10))


def test_fit_flat_and_unfittable_curves():
    assert fit_power_law([1.0, 1.0]).coverage(50) == 1.0
    assert fit_power_law([0.0, 0.0, 0.0]).coverage(50) == 0.0
    assert fit_power_law([0.3]) is None
    assert fit_power_law([0.0, 0.4, 1.0]) is None  # one informative point


def test_forecast_interval_brackets_the_point_and_grows_with_k():
    # 40 problems with graded difficulty: 10 samples each, c correct.
    samples = [(10, c) for c in (0, 0, 0, 0, 1, 1, 2, 3, 5, 10) * 4]
    f2, f4 = forecast_coverage(samples, [20, 40], fit_k_max=10, bootstrap=300, seed=3)
    measured = pass_at_k_curve(samples, 10)[-1]
    assert measured < f2.coverage < f4.coverage < 1
    for f in (f2, f4):
        assert f.low is not None and f.low <= f.coverage <= f.high
    assert f4.high - f4.low > 0


def test_forecast_without_bootstrap_has_no_interval():
    (f,) = forecast_coverage([(10, 1), (10, 3), (10, 0)], [20], bootstrap=0)
    assert f.low is None and f.high is None and 0 < f.coverage < 1


# --- the stop rule --------------------------------------------------------------------


def _ev(**kw):
    base = dict(started=3, limit=10, with_patch=3, tests=3, reproducing_tests=2, ladder=2)
    base.update(kw)
    return WaveEvidence(**base)


def _cl(traj, votes, name="a"):
    return ClusterEvidence(members=[name], trajectories=traj, votes=votes)


def test_stop_rule_stops_when_the_patches_agree_and_a_reproducing_test_votes_for_them():
    d = decide(0, _ev(clusters=[_cl(3, 2)]), StopRule())
    assert d.action == "stop" and d.reason.startswith("agreement")


def test_stop_rule_stops_at_the_budget_whatever_the_evidence():
    d = decide(3, _ev(started=10, with_patch=0, clusters=[]), StopRule())
    assert (d.action, d.reason.split(":")[0]) == ("stop", "budget")


def test_stop_rule_widens_without_a_reproducing_test_or_a_patch_while_the_ladder_allows():
    assert decide(0, _ev(reproducing_tests=0, clusters=[_cl(3, 0)]), StopRule()).action == "widen"
    assert decide(0, _ev(with_patch=0), StopRule()).action == "widen"
    full = _ev(reproducing_tests=0, temperatures_in_use=2, clusters=[_cl(3, 0)])
    assert decide(0, full, StopRule()).action == "continue"


def test_stop_rule_continues_on_disagreement_or_an_unsupported_majority():
    split = _ev(with_patch=3, clusters=[_cl(1, 1, "a"), _cl(1, 1, "b"), _cl(1, 0, "c")])
    assert decide(0, split, StopRule()).action == "continue"
    tied = _ev(with_patch=4, started=4, clusters=[_cl(3, 1, "a"), _cl(1, 1, "b")])
    assert decide(0, tied, StopRule()).action == "continue"  # the rival has as many votes
    unvoted = _ev(clusters=[_cl(3, 0)])
    assert decide(0, unvoted, StopRule()).action == "continue"
    lone = _ev(started=1, with_patch=1, clusters=[_cl(1, 1)])
    assert decide(0, lone, StopRule(min_cluster=2)).action == "continue"


# --- what-if --------------------------------------------------------------------------


def _traj(temp, cands, correct, edit_cost=1.0):
    return TrajectoryOutcome(
        temperature=temp, candidates=cands, correct=correct, test_cost_usd=0.5,
        edit_cost_usd=edit_cost,
    )  # fmt: skip


def _problems():
    # p1: one right trajectory (T=0.2, right only from attempt 2) of two; votes favour it.
    p1 = ProblemOutcome(
        id="p1",
        trajectories=[
            _traj(0.2, ["w", "r"], [False, True]),
            _traj(0.8, ["w2", "w2"], [False, False]),
        ],
        votes={"r": 2, "w": 0, "w2": 1},
        fixed_cost_usd=1.0,
    )
    # p2: both right at T=0.8 only.
    p2 = ProblemOutcome(
        id="p2",
        trajectories=[_traj(0.2, [None, None], [None, None]), _traj(0.8, ["r"], [True])],
        votes={"r": 1},
        fixed_cost_usd=1.0,
    )
    return [p1, p2]


def test_what_if_hand_computed_rows():
    probs = _problems()
    full = evaluate_config(probs, WhatIfConfig(samples=2, attempts=2, temperatures=[0.2, 0.8]))
    assert full.coverage == pytest.approx(1.0)
    assert full.resolve_rate == pytest.approx(1.0)  # r has the most votes in both
    # p1: 1 + 2 x (0.5 + 1.0); p2: 1 + (0.5 + 1.0) + (0.5 + 1.0) = 4 each
    assert full.cost_usd == pytest.approx(4.0)
    one = evaluate_config(probs, WhatIfConfig(samples=1, attempts=2, temperatures=[0.2, 0.8]))
    assert one.coverage == pytest.approx(0.5)  # each problem: 1 of 2 trajectories right
    short = evaluate_config(probs, WhatIfConfig(samples=2, attempts=1, temperatures=[0.2, 0.8]))
    assert short.coverage == pytest.approx(0.5)  # p1's fix came at attempt 2
    # p1 at 1 attempt: 1 + 2 x (0.5 + 0.5); p2: 1 + (0.5 + 0.5) + (0.5 + 1.0)
    assert short.cost_usd == pytest.approx((3.0 + 3.5) / 2)
    cold = evaluate_config(probs, WhatIfConfig(samples=2, attempts=2, temperatures=[0.2]))
    assert cold.coverage == pytest.approx(0.5) and cold.resolve_rate == pytest.approx(0.5)


def test_what_if_recommends_the_cheapest_configuration_within_the_margin():
    result = what_if(_problems(), margin=0.0)
    assert result.best.resolve_rate == pytest.approx(1.0)
    rec = result.recommended
    assert rec.resolve_rate == pytest.approx(1.0)
    assert rec.cost_usd == min(r.cost_usd for r in result.rows if r.resolve_rate >= 1.0 - 1e-9)
    loose = what_if(_problems(), margin=0.6)
    assert loose.recommended.cost_usd < rec.cost_usd


# --- the generation stage's wave bookkeeping ------------------------------------------


def test_waves_start_narrow_and_each_widen_adds_the_next_temperature():
    from codemonkeys.generation.adaptive import temperature_for
    from codemonkeys.generation.records import AdaptiveRecord, StopDecision

    def d(wave, action):
        return StopDecision(wave=wave, action=action, reason="", evidence=_ev())

    rec = AdaptiveRecord(wave_size=3, limit=10, ladder=[0.2, 0.6, 1.0])
    assert [rec.started_at(w) for w in range(4)] == [3, 6, 9, 10]
    rec.decisions = [d(0, "widen"), d(1, "continue"), d(2, "widen"), d(3, "widen")]
    assert [rec.in_use_at(w) for w in range(5)] == [1, 2, 2, 3, 3]  # capped at the ladder
    assert [temperature_for(i, rec.ladder, 1) for i in range(3)] == [0.2, 0.2, 0.2]
    assert [temperature_for(i, rec.ladder, 2) for i in range(3, 6)] == [0.6, 0.2, 0.6]


def test_what_if_grid_offers_no_more_samples_than_a_temperature_has():
    from codemonkeys.analysis.whatif import default_grid

    grid = default_grid(_problems())  # one trajectory per temperature, two in all
    assert {(c.samples, tuple(c.temperatures)) for c in grid} == {
        (1, (0.2,)), (1, (0.8,)), (1, (0.2, 0.8)), (2, (0.2, 0.8)),
    }  # fmt: skip
    assert {c.attempts for c in grid} == {1, 2}
