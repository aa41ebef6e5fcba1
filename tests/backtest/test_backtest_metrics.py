"""Metric functions checked against numbers worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from backtest.metrics import cagr, compute_metrics, max_drawdown, periods_per_year, sharpe, sortino, trade_stats


def test_max_drawdown_is_worst_peak_to_trough() -> None:
    assert max_drawdown(np.array([100, 120, 90, 130, 65.0])) == pytest.approx(0.5)
    assert max_drawdown(np.array([110.0, 100]), init=100) == pytest.approx(10 / 110)


def test_trade_stats_by_hand() -> None:
    s = trade_stats(np.array([0.1, -0.05, 0.02, -0.01]))
    assert s["win_rate"] == 0.5
    assert s["profit_factor"] == pytest.approx(0.12 / 0.06)
    assert s["expectancy"] == pytest.approx(0.015)
    assert s["trades"] == 4
    assert math.isnan(trade_stats(np.array([]))["profit_factor"])
    assert trade_stats(np.array([0.1]))["profit_factor"] == math.inf


def test_sharpe_and_sortino_by_hand() -> None:
    r = np.array([0.01, -0.02, 0.03, 0.0])
    mean, sd = 0.005, np.std(r, ddof=1)
    assert sharpe(r, 4) == pytest.approx(mean / sd * 2)
    assert sortino(r, 4) == pytest.approx(mean / math.sqrt(0.0004 / 4) * 2)
    assert math.isnan(sharpe(np.zeros(5), 4))


def test_cagr_and_periods_per_year() -> None:
    ppy = periods_per_year(3_600_000)
    assert ppy == pytest.approx(8766)
    assert cagr(0.21, int(2 * ppy), ppy) == pytest.approx(0.1, rel=1e-3)


def test_compute_metrics_exposure_and_calmar() -> None:
    m = compute_metrics(np.array([100.0, 110, 99, 121]), 100.0, np.array([0.21]), 2, 3.0)
    assert m["total_return"] == pytest.approx(0.21)
    assert m["exposure"] == pytest.approx(0.5)
    assert m["max_drawdown"] == pytest.approx(0.1)
    assert m["calmar"] == pytest.approx(m["cagr"] / 0.1)
