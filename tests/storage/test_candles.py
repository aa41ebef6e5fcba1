from __future__ import annotations

import numpy as np
import pandas as pd
from sqlalchemy.orm import Session, sessionmaker

from storage.candles import candle_range, last_candle_ts, load_candles, load_candles_many, upsert_candles


def _candles(n: int, start: str = "2024-01-01", seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    open_ = np.r_[close[0], close[:-1]]
    idx = pd.date_range(start, periods=n, freq="1h", tz="UTC", name="time")
    return pd.DataFrame(
        {
            "open": open_,
            "high": np.maximum(open_, close) * 1.001,
            "low": np.minimum(open_, close) * 0.999,
            "close": close,
            "volume": rng.uniform(1, 10, n),
        },
        index=idx,
    )


def test_upsert_twice_leaves_the_same_rows(session_factory: sessionmaker[Session]) -> None:
    frame = _candles(500)
    for _ in range(2):
        with session_factory.begin() as s:
            upsert_candles(s, "binance", "BTC/USDT", "1h", frame)
    with session_factory() as s:
        loaded = load_candles(s, "binance", "BTC/USDT", "1h")
        assert candle_range(s, "binance", "BTC/USDT", "1h") == (
            int(frame.index[0].value // 10**6),
            int(frame.index[-1].value // 10**6),
            500,
        )
    pd.testing.assert_frame_equal(loaded, frame, check_freq=False, check_index_type=False)
    assert str(loaded.index.tz) == "UTC"


def test_upsert_replaces_a_corrected_bar(session_factory: sessionmaker[Session]) -> None:
    frame = _candles(10)
    with session_factory.begin() as s:
        upsert_candles(s, "binance", "ETH/USDT", "1h", frame)
    fixed = frame.iloc[[3]].copy()
    fixed["close"] = fixed["high"]
    with session_factory.begin() as s:
        upsert_candles(s, "binance", "ETH/USDT", "1h", fixed)
    with session_factory() as s:
        loaded = load_candles(s, "binance", "ETH/USDT", "1h")
    assert len(loaded) == 10
    assert loaded["close"].iloc[3] == fixed["close"].iloc[0]


def test_load_candles_limit_keeps_the_newest_rows_oldest_first(session_factory: sessionmaker[Session]) -> None:
    frame = _candles(50)
    with session_factory.begin() as s:
        upsert_candles(s, "binance", "BTC/USDT", "1h", frame)
    with session_factory() as s:
        tail = load_candles(s, "binance", "BTC/USDT", "1h", limit=5)
        assert last_candle_ts(s, "binance", "BTC/USDT", "1h") == frame.index[-1].value // 10**6
        assert last_candle_ts(s, "binance", "XRP/USDT", "1h") is None
    assert list(tail.index) == list(frame.index[-5:])


def test_series_are_kept_apart_by_exchange_symbol_and_timeframe(session_factory: sessionmaker[Session]) -> None:
    with session_factory.begin() as s:
        upsert_candles(s, "binance", "BTC/USDT", "1h", _candles(5))
        upsert_candles(s, "kraken", "BTC/USDT", "1h", _candles(7))
        upsert_candles(s, "binance", "BTC/USDT", "4h", _candles(3))
    with session_factory() as s:
        assert len(load_candles(s, "binance", "BTC/USDT", "1h")) == 5
        assert len(load_candles(s, "kraken", "BTC/USDT", "1h")) == 7
        assert len(load_candles(s, "binance", "BTC/USDT", "4h")) == 3


def test_load_candles_many_matches_per_symbol_loads_in_its_window(session_factory: sessionmaker[Session]) -> None:
    frames = {f"C{i}/USDT": _candles(30, seed=i) for i in range(3)}
    with session_factory.begin() as s:
        for sym, frame in frames.items():
            upsert_candles(s, "binance", sym, "1h", frame)
        upsert_candles(s, "kraken", "C0/USDT", "1h", _candles(30, seed=9))  # another exchange stays apart
    start = frames["C0/USDT"].index[10].value // 10**6
    end = frames["C0/USDT"].index[20].value // 10**6
    with session_factory() as s:
        many = load_candles_many(
            s, "binance", "1h", ["C2/USDT", "C0/USDT", "C1/USDT", "NONE/USDT"], start_ms=start, end_ms=end, chunk=2
        )
        one = {sym: load_candles(s, "binance", sym, "1h", start_ms=start, end_ms=end) for sym in frames}
    assert sorted(many) == sorted(frames)  # a symbol without rows is left out
    for sym in frames:
        pd.testing.assert_frame_equal(many[sym], one[sym])
        assert len(many[sym]) == 10 and many[sym].index[0].value // 10**6 == start
