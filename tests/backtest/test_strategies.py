"""Stops, triggers, parameter errors and the no-look-ahead property."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from backtest.engine import run_backtest
from backtest.events import events_to_csr, normalize_events
from backtest.strategy import make_strategy, parse_param_args
from core.errors import InputError

IDX = pd.date_range("2024-01-01", periods=8, freq="h", tz="UTC")


def frame(rows: list[tuple[float, float, float, float]]) -> pd.DataFrame:
    arr = np.asarray(rows, dtype=float)
    return pd.DataFrame(
        {"open": arr[:, 0], "high": arr[:, 1], "low": arr[:, 2], "close": arr[:, 3], "volume": 1.0},
        index=IDX[: len(rows)],
    )


FLAT = [(100, 101, 99, 100)] * 8


def ev(bars: list[int], scores: list[float] | None = None, **cols: list[str]) -> pd.DataFrame:
    data = {"timestamp": [IDX[b] for b in bars], "score": scores or [1.0] * len(bars), **cols}
    return normalize_events(pd.DataFrame(data))


def trades_of(rows: list[tuple[float, float, float, float]], events: pd.DataFrame, **params: object) -> pd.DataFrame:
    strategy = make_strategy("fixed_hold", {"fees": 0, "slippage": 0, **params})
    return run_backtest(frame(rows), events, strategy, random_draws=10).trades


def test_stop_loss_fills_at_level_inside_the_bar() -> None:
    rows = list(FLAT)
    rows[3] = (99, 100, 94, 95)  # entry at bar 1 open 100; 5 % stop at 95 touched on bar 3
    t = trades_of(rows, ev([0]), hold_bars=6, stop_loss=0.05).iloc[0]
    assert t.exit_ts == IDX[3] and t.exit_price == pytest.approx(95) and t.exit_reason == "stop_loss"


def test_stop_loss_gap_fills_at_the_open() -> None:
    rows = list(FLAT)
    rows[2] = (90, 91, 89, 90)
    t = trades_of(rows, ev([0]), hold_bars=6, stop_loss=0.05).iloc[0]
    assert t.exit_ts == IDX[2] and t.exit_price == pytest.approx(90)


def test_take_profit_and_stop_in_one_bar_assume_the_stop() -> None:
    rows = list(FLAT)
    rows[2] = (100, 110, 90, 100)
    t = trades_of(rows, ev([0]), hold_bars=6, stop_loss=0.05, take_profit=0.05).iloc[0]
    assert t.exit_reason == "stop_loss" and t.exit_price == pytest.approx(95)


def test_take_profit_short_fills_below_entry() -> None:
    rows = list(FLAT)
    rows[4] = (100, 100.5, 96, 97)
    t = trades_of(rows, ev([0]), hold_bars=6, take_profit=0.03, direction="short").iloc[0]
    assert t.exit_ts == IDX[4] and t.exit_price == pytest.approx(97) and t.exit_reason == "take_profit"
    assert t["return"] == pytest.approx(0.03)


def test_trailing_stop_follows_closed_highs_only() -> None:
    rows = list(FLAT)
    rows[2] = (100, 120, 100, 119)  # new high 120 -> trail level 108 from bar 3 on
    rows[3] = (118, 118, 107, 108)
    t = trades_of(rows, ev([0]), hold_bars=6, trailing_stop=0.1).iloc[0]
    assert t.exit_ts == IDX[3] and t.exit_price == pytest.approx(108) and t.exit_reason == "trailing_stop"


def test_min_score_detector_and_symbol_filter_events() -> None:
    events = ev([0, 2, 4], [0.5, 3.0, 5.0], detector=["a", "a", "b"], symbol=["X/USDT"] * 3)
    trades = trades_of(FLAT, events, hold_bars=1, min_score=1.0, detector="a")
    assert list(trades.entry_ts) == [IDX[3]]


def test_bad_params_name_the_value() -> None:
    with pytest.raises(InputError, match="hold_bars='abc'"):
        make_strategy("fixed_hold", {"hold_bars": "abc"})
    with pytest.raises(InputError, match="unknown parameter 'hold'"):
        make_strategy("fixed_hold", {"hold": "3"})
    with pytest.raises(InputError, match="direction='up'"):
        make_strategy("fixed_hold", {"direction": "up"})
    with pytest.raises(InputError, match="unknown strategy 'nope'"):
        make_strategy("nope")
    with pytest.raises(InputError, match="'hold_bars'"):
        parse_param_args(["hold_bars"])


def test_event_off_the_bar_grid_is_an_error_naming_it() -> None:
    events = normalize_events(pd.DataFrame({"timestamp": ["2024-01-01T00:30:00Z"], "score": [1.0]}))
    with pytest.raises(InputError, match="2024-01-01T00:30:00"):
        events_to_csr(events, IDX, [""])


def _random_market(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    open_ = np.concatenate(([100.0], close[:-1]))
    high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.01, n))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.01, n))
    idx = pd.date_range("2024-01-01", periods=n, freq="h", tz="UTC")
    return pd.DataFrame({"open": open_, "high": high, "low": low, "close": close, "volume": 1.0}, index=idx)


@pytest.mark.parametrize("name", ["fixed_hold", "bracket", "trailing", "fade"])
def test_changing_candles_after_t_never_changes_earlier_trades(name: str) -> None:
    market = _random_market(300, 1)
    idx = market.index
    rng = np.random.default_rng(2)
    events = normalize_events(pd.DataFrame({"timestamp": idx[np.sort(rng.choice(299, 40, replace=False))], "score": 1}))
    strategy = make_strategy(name, {"hold_bars": 10})
    base = run_backtest(market, events, strategy, random_draws=10).trades
    for t in (50, 150, 250):
        changed = market.copy()
        changed.iloc[t + 1 :, :4] *= rng.uniform(0.5, 1.5, size=(len(idx) - t - 1, 1))
        changed["high"] = changed[["open", "high", "low", "close"]].max(axis=1)
        changed["low"] = changed[["open", "high", "low", "close"]].min(axis=1)
        other = run_backtest(changed, events, strategy, random_draws=10).trades
        cols = ["entry_ts", "entry_price"]
        entered = base.loc[base.entry_bar <= t, cols].reset_index(drop=True)
        pd.testing.assert_frame_equal(entered, other.loc[other.entry_bar <= t, cols].reset_index(drop=True))
        done_cols = ["entry_ts", "entry_price", "exit_ts", "exit_price", "return"]
        closed = base.loc[base.exit_bar <= t, done_cols].reset_index(drop=True)
        pd.testing.assert_frame_equal(closed, other.loc[other.exit_bar <= t, done_cols].reset_index(drop=True))
