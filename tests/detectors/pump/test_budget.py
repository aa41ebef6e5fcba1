"""The alert budget: episodes per symbol-week on pump-free data decide the threshold."""

from __future__ import annotations

import numpy as np
import pytest

from detectors.pump.budget import BudgetCurve, budget_curve, episodes_at, run_starts


@pytest.mark.parametrize("merge_gap", [1, 3])
def test_episode_counts_match_counting_runs_directly(merge_gap: int) -> None:
    rng = np.random.default_rng(0)
    for _ in range(100):
        scores = rng.random(60)
        scores[rng.random(60) < 0.1] = np.nan  # warm-up / missing scores never alarm
        thresholds = rng.random(9)
        direct = [int(run_starts(np.nan_to_num(scores, nan=-1.0) > t, merge_gap).sum()) for t in thresholds]
        assert episodes_at(scores, thresholds, merge_gap).tolist() == direct


def test_threshold_for_a_budget_keeps_the_rate_under_it_and_is_the_lowest_such() -> None:
    rng = np.random.default_rng(1)
    series = [rng.random(2000) for _ in range(10)]
    curve = budget_curve(series, [2.0] * 10)  # 20 symbol-weeks
    for budget in (0.05, 0.1, 0.5, 2.0):
        thr = curve.threshold_for(budget)
        rate = sum(int(episodes_at(s, np.array([thr]))[0]) for s in series) / 20
        assert rate <= budget
        lower = curve.thresholds[curve.thresholds < thr]
        if len(lower):  # the next lower grid point breaks the budget
            assert sum(int(episodes_at(s, lower[-1:])[0]) for s in series) / 20 > budget


def test_curve_round_trips_through_json() -> None:
    curve = budget_curve([np.linspace(0, 1, 50)], [1.0])
    again = BudgetCurve.from_json(curve.to_json())
    assert again.threshold_for(0.5) == curve.threshold_for(0.5) and again.weeks == 1.0
