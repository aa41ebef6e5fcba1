"""Direction ``against``: each event is traded against the market's move at it (fading a venue)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from backtest.engine import run_backtest
from backtest.events import normalize_events
from backtest.strategy import make_strategy
from core.errors import InputError
from tests.backtest.test_fixed_hold import IDX, candles, long_return, short_return


def _events(bars_moves: list[tuple[int, float]]) -> pd.DataFrame:
    return normalize_events(
        pd.DataFrame({"timestamp": [IDX[b] for b, _ in bars_moves], "score": 1.0, "move": [m for _, m in bars_moves]})
    )


def test_rises_are_shorted_and_falls_bought() -> None:
    strategy = make_strategy("fixed_hold", {"direction": "against", "hold_bars": 2, "fees": 0.0, "slippage": 0.0})
    result = run_backtest(candles(), _events([(1, 0.04), (5, -0.03)]), strategy, symbol="OKX", random_draws=10)
    trades = result.trades.sort_values("entry_ts")
    assert trades["direction"].tolist() == ["short", "long"]
    assert trades["symbol"].tolist() == ["OKX (short after rises)", "OKX (long after falls)"]
    assert trades["return"].iloc[0] == pytest.approx(short_return(101, 107, 0.0, 0.0))
    assert trades["return"].iloc[1] == pytest.approx(long_return(103, 110, 0.0, 0.0))
    assert result.metrics["random"]["trades"] == pytest.approx(2.0)


def test_events_without_a_move_are_skipped_and_a_missing_column_is_named() -> None:
    strategy = make_strategy("fixed_hold", {"direction": "against", "hold_bars": 2})
    result = run_backtest(candles(), _events([(1, np.nan), (5, -0.03)]), strategy, symbol="OKX", random_draws=10)
    assert len(result.trades) == 1 and result.trades["direction"].iat[0] == "long"
    plain = normalize_events(pd.DataFrame({"timestamp": [IDX[1]], "score": 1.0}))
    with pytest.raises(InputError, match="needs the events' 'move'"):
        run_backtest(candles(), plain, strategy, symbol="OKX", random_draws=10)


def test_fade_venue_preset_trades_divergence_events_against_their_move() -> None:
    strategy = make_strategy("fade_venue", {})
    assert strategy.direction == "against" and strategy.detector == "divergence"
    with pytest.raises(InputError, match="expected 'long', 'short' or 'against'"):
        make_strategy("fixed_hold", {"direction": "sideways"})


def test_stored_divergence_events_are_faded_from_the_database(session_factory) -> None:  # noqa: ANN001
    from backtest.service import backtest_symbol
    from storage.candles import upsert_candles
    from storage.events import NewEvent, insert_events

    frame = candles()
    with session_factory.begin() as s:
        upsert_candles(s, "okx", "BTC/USDT", "1h", frame)
        insert_events(
            s,
            [
                NewEvent(
                    "okx",
                    "BTC/USDT",
                    "1h",
                    "divergence",
                    int(IDX[1].value // 10**6),
                    30.0,
                    10.0,
                    kind="divergence",
                    details={"group_gap": 0.05, "price_change": -0.01},
                ),
                NewEvent("okx", "BTC/USDT", "1h", "zscore", int(IDX[3].value // 10**6), 30.0, 10.0),
            ],
        )
    result = backtest_symbol(
        session_factory,
        exchange="okx",
        symbol="BTC/USDT",
        timeframe="1h",
        strategy="fade_venue",
        params={"hold_bars": "2", "take_profit": "0.5", "stop_loss": "0.5"},
        random_draws=10,
    )
    assert len(result.trades) == 1  # the zscore event is not a divergence
    trade = result.trades.iloc[0]
    assert trade["direction"] == "short" and trade["entry_ts"] == IDX[2]  # the venue was 5 % above its group
