"""fixed_hold against trades computed by hand on tiny frames."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from backtest.engine import run_backtest
from backtest.events import normalize_events
from backtest.strategy import make_strategy

IDX = pd.date_range("2024-01-01", periods=10, freq="h", tz="UTC")
OPEN = np.array([100.0, 102, 101, 105, 107, 104, 103, 108, 110, 109])
CLOSE = OPEN + 1.5


def candles(open_: np.ndarray = OPEN, close: np.ndarray = CLOSE) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "open": open_,
            "high": np.maximum(open_, close) + 1,
            "low": np.minimum(open_, close) - 1,
            "close": close,
            "volume": 1.0,
        },
        index=IDX[: len(open_)],
    )


def events(*bars: int) -> pd.DataFrame:
    return normalize_events(pd.DataFrame({"timestamp": [IDX[b] for b in bars], "score": 1.0}))


def long_return(entry_open: float, exit_price: float, fees: float, slip: float) -> float:
    e, x = entry_open * (1 + slip), exit_price * (1 - slip)
    return (x * (1 - fees) - e * (1 + fees)) / (e * (1 + fees))


def short_return(entry_open: float, exit_price: float, fees: float, slip: float) -> float:
    e, x = entry_open * (1 - slip), exit_price * (1 + slip)
    return (e * (1 - fees) - x * (1 + fees)) / (e * (1 + fees))


def run(ev: pd.DataFrame, **params: object) -> pd.DataFrame:
    strategy = make_strategy("fixed_hold", params)
    return run_backtest(candles(), ev, strategy, random_draws=10).trades


def test_fixed_hold_long_enters_next_open_and_exits_after_hold_bars() -> None:
    trades = run(events(1), hold_bars=3, fees=0.001, slippage=0.01)
    assert len(trades) == 1
    t = trades.iloc[0]
    assert t.entry_ts == IDX[2] and t.exit_ts == IDX[5]
    assert t.entry_price == pytest.approx(101 * 1.01)
    assert t.exit_price == pytest.approx(104 * 0.99)
    assert t["return"] == pytest.approx(long_return(101, 104, 0.001, 0.01), rel=1e-12)
    assert t.exit_reason == "time"


def test_fixed_hold_short_fills_and_return_mirror_long() -> None:
    trades = run(events(2), hold_bars=2, fees=0.002, slippage=0.005, direction="short")
    t = trades.iloc[0]
    assert t.entry_ts == IDX[3] and t.exit_ts == IDX[5]
    assert t.entry_price == pytest.approx(105 * 0.995)
    assert t.exit_price == pytest.approx(104 * 1.005)
    assert t["return"] == pytest.approx(short_return(105, 104, 0.002, 0.005), rel=1e-12)
    assert t.direction == "short"


def test_fixed_hold_ignores_events_while_in_position_but_not_on_exit_bar() -> None:
    # Trade 1: event 1 -> bars 2..5. Events 2, 3, 4 come while in it; event 5 is on its exit bar.
    trades = run(events(1, 2, 3, 4, 5), hold_bars=3, fees=0.0, slippage=0.0)
    assert list(trades.entry_ts) == [IDX[2], IDX[6]]
    assert list(trades.exit_ts) == [IDX[5], IDX[9]]
    assert trades["return"].iloc[1] == pytest.approx(OPEN[9] / OPEN[6] - 1)


def test_fixed_hold_exit_beyond_data_uses_last_close_with_costs() -> None:
    trades = run(events(7), hold_bars=5, fees=0.001, slippage=0.002)
    t = trades.iloc[0]
    assert t.entry_ts == IDX[8]
    assert t.exit_ts == IDX[9]  # the bar whose close was used
    assert t.exit_price == pytest.approx(CLOSE[9] * (1 - 0.002))
    assert t["return"] == pytest.approx(long_return(OPEN[8], CLOSE[9], 0.001, 0.002), rel=1e-12)
    assert t.exit_reason == "end_of_data"


def test_fixed_hold_entry_on_last_bar_exits_at_its_close() -> None:
    trades = run(events(8), hold_bars=1, fees=0.0, slippage=0.0, direction="short")
    t = trades.iloc[0]
    assert t.entry_ts == IDX[9] and t.exit_ts == IDX[9]
    assert t["return"] == pytest.approx(1 - CLOSE[9] / OPEN[9])


def test_fixed_hold_event_on_last_bar_cannot_trade() -> None:
    assert run(events(9), hold_bars=1).empty


def test_fixed_hold_equity_compounds_trade_returns() -> None:
    strategy = make_strategy("fixed_hold", {"hold_bars": 2, "fees": 0.001, "slippage": 0.001})
    result = run_backtest(candles(), events(0, 4), strategy, random_draws=10)
    growth = np.prod(1 + result.trades["return"].to_numpy())
    assert result.metrics["strategy"]["total_return"] == pytest.approx(growth - 1, rel=1e-12)
    assert result.metrics["strategy"]["trades"] == 2


def test_vectorbt_trade_records_give_the_documented_return_formula() -> None:
    """vectorbt's own ``return`` field divides by size*entry price; ours adds the entry fees, as documented."""
    import vectorbt as vbt

    close = pd.Series([10.0, 11, 12, 13], index=IDX[:4])
    size = np.array([np.nan, np.inf, np.nan, -np.inf])
    pf = vbt.Portfolio.from_orders(
        close, size=size, price=close.to_numpy(), fees=0.01, slippage=0.001, init_cash=100.0, direction="longonly"
    )
    rec = pf.exit_trades.values[0]
    ours = rec["pnl"] / (rec["size"] * rec["entry_price"] + rec["entry_fees"])
    assert ours == pytest.approx(long_return(11, 13, 0.01, 0.001), rel=1e-12)
    assert rec["return"] == pytest.approx(rec["pnl"] / (rec["size"] * rec["entry_price"]), rel=1e-12)
    assert pf.final_value() == pytest.approx(100 * (1 + ours), rel=1e-12)
