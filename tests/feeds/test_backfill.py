"""sync_candles / sync_many: incremental, gap filling, resumable, per-entry failures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy.orm import Session, sessionmaker

from core.config import ExchangeConfig
from core.errors import BadSymbolError, DataSourceError
from feeds.backfill import find_gaps, sync_candles, sync_many
from feeds.exchange import ExchangeFeed
from feeds.retry import RetryPolicy
from storage.candles import load_candles, upsert_candles
from storage.db import session_scope
from tests.fakes.binance import FakeBinance, make_candles

FAST = RetryPolicy(max_retries=2, base_delay=0.001, max_delay=0.01)
H = 3_600_000
T0 = int(pd.Timestamp("2024-01-01", tz="UTC").value // 1_000_000)


def _feed(fake: FakeBinance, **cfg: object) -> ExchangeFeed:
    return ExchangeFeed("binance", ExchangeConfig(ccxt_config=fake.ccxt_config(), **cfg), retry=FAST)


def _stored(factory: sessionmaker[Session], symbol: str = "BTC/USDT") -> pd.DataFrame:
    with session_scope(factory) as s:
        return load_candles(s, "binance", symbol, "1h")


def test_find_gaps_reports_first_and_last_missing_bar() -> None:
    ts = np.array([0, 1, 2, 5, 6, 9]) * H
    assert find_gaps(ts, H) == [(3 * H, 4 * H), (7 * H, 8 * H)]
    assert find_gaps(np.array([0, H]), H) == []


async def test_sync_candles_backfills_then_continues_incrementally(session_factory: sessionmaker[Session]) -> None:
    candles = make_candles(periods=2500)
    async with FakeBinance({"BTC/USDT": candles}) as fake, _feed(fake) as feed:
        seen: list[tuple[int, int]] = []
        first = await sync_candles(
            feed,
            session_factory,
            "BTC/USDT",
            "1h",
            since_ms=T0,
            now_ms=T0 + 2000 * H + 5,
            progress=lambda d, t: seen.append((d, t)),
        )
        assert first.rows_added == 2000
        assert first.last_ts == T0 + 1999 * H
        assert seen[-1] == (2000, 2000)
        calls = fake.requests["/api/v3/klines"]
        second = await sync_candles(feed, session_factory, "BTC/USDT", "1h", now_ms=T0 + 2010 * H + 5)
        assert second.rows_added == 10 and second.gaps_filled == 0
        assert fake.requests["/api/v3/klines"] == calls + 1  # starts at the last stored bar, one page
    stored = _stored(session_factory)
    assert len(stored) == 2010
    np.testing.assert_allclose(stored["close"].to_numpy(), candles["close"].to_numpy()[:2010])


async def test_sync_candles_never_stores_the_open_bar_and_drops_one_stored_earlier(
    session_factory: sessionmaker[Session],
) -> None:
    candles = make_candles(periods=30)
    with session_scope(session_factory) as s:  # e.g. imported from a file while the bar was forming
        upsert_candles(s, "binance", "BTC/USDT", "1h", candles.iloc[:21])
    async with FakeBinance({"BTC/USDT": candles}) as fake, _feed(fake) as feed:
        result = await sync_candles(feed, session_factory, "BTC/USDT", "1h", now_ms=T0 + 20 * H + 30 * 60_000)
    stored = _stored(session_factory)
    assert stored.index[-1] == candles.index[19]
    assert result.last_ts == T0 + 19 * H


async def test_sync_candles_fills_holes_in_stored_range(session_factory: sessionmaker[Session]) -> None:
    candles = make_candles(periods=200)
    with session_scope(session_factory) as s:
        upsert_candles(s, "binance", "BTC/USDT", "1h", candles.drop(candles.index[[10, 11, 12, 50, 120]]).iloc[:150])
    async with FakeBinance({"BTC/USDT": candles}) as fake, _feed(fake) as feed:
        result = await sync_candles(feed, session_factory, "BTC/USDT", "1h", since_ms=T0, now_ms=T0 + 200 * H)
    assert result.gaps_filled == 3
    assert result.rows_added == 200 - 150  # 5 bars in three holes + 45 after the last stored bar
    assert result.gaps_remaining == 0
    assert len(_stored(session_factory)) == 200


async def test_sync_candles_counts_holes_the_exchange_also_has(session_factory: sessionmaker[Session]) -> None:
    candles = make_candles(periods=100).drop(pd.date_range("2024-01-02", periods=3, freq="h", tz="UTC"))
    async with FakeBinance({"BTC/USDT": candles}) as fake, _feed(fake) as feed:
        first = await sync_candles(feed, session_factory, "BTC/USDT", "1h", since_ms=T0, now_ms=T0 + 100 * H)
        again = await sync_candles(feed, session_factory, "BTC/USDT", "1h", since_ms=T0, now_ms=T0 + 100 * H)
    assert first.rows_added == 97 and first.gaps_remaining == 1
    assert again.rows_added == 0 and again.gaps_filled == 0 and again.gaps_remaining == 1


async def test_sync_candles_is_resumable_after_interruption(session_factory: sessionmaker[Session]) -> None:
    candles = make_candles(periods=3000)
    now = T0 + 3000 * H
    async with FakeBinance({"BTC/USDT": candles}) as fake, _feed(fake, candles_per_request=500) as feed:
        fake.fail_after(3)  # the exchange goes down after three pages
        with pytest.raises(DataSourceError, match="ExchangeNotAvailable"):
            await sync_candles(feed, session_factory, "BTC/USDT", "1h", since_ms=T0, now_ms=now)
        assert len(_stored(session_factory)) == 1500  # every page fetched before the failure was kept
        fake.fail_after(None)
        result = await sync_candles(feed, session_factory, "BTC/USDT", "1h", since_ms=T0, now_ms=now)
    assert result.rows_added == 1500 and result.gaps_remaining == 0
    stored = _stored(session_factory)
    assert len(stored) == 3000
    assert find_gaps(stored.index.as_unit("ms").asi8, H) == []
    np.testing.assert_allclose(stored["open"].to_numpy(), candles["open"].to_numpy())


async def test_sync_candles_extends_history_backwards(session_factory: sessionmaker[Session]) -> None:
    candles = make_candles(periods=100)
    with session_scope(session_factory) as s:
        upsert_candles(s, "binance", "BTC/USDT", "1h", candles.iloc[60:80])
    async with FakeBinance({"BTC/USDT": candles}) as fake, _feed(fake) as feed:
        result = await sync_candles(feed, session_factory, "BTC/USDT", "1h", since_ms=T0, now_ms=T0 + 100 * H)
    assert result.rows_added == 80
    assert result.first_ts == T0


async def test_sync_many_isolates_a_bad_symbol(session_factory: sessionmaker[Session]) -> None:
    data = {s: make_candles(periods=40, seed=i) for i, s in enumerate(["BTC/USDT", "ETH/USDT", "SOL/USDT"])}
    async with FakeBinance(data) as fake, _feed(fake, max_concurrency=2) as feed:
        results = await sync_many(
            feed,
            session_factory,
            [("BTC/USDT", "1h"), ("ETH/USDT", "1h"), ("SOL/USDT", "1h"), ("NOPE/USDT", "1h")],
            since_ms=T0,
            now_ms=T0 + 40 * H,
        )
    assert isinstance(results[("NOPE/USDT", "1h")], BadSymbolError)
    for symbol in data:
        assert results[(symbol, "1h")].rows_added == 40  # type: ignore[union-attr]
        assert len(_stored(session_factory, symbol)) == 40


async def test_sync_candles_on_real_shared_file_keeps_its_true_gaps(
    shared_data: Path, session_factory: sessionmaker[Session]
) -> None:
    """Serve the real SOL/USDT hours (2 exchange outages) and sync them from scratch."""
    from storage.candle_csv import check_candles, read_candle_csv

    real = read_candle_csv(shared_data / "candles" / "SOL_USDT-1h.csv")
    start = int(real.index[0].value // 1_000_000)
    now = int(real.index[-1].value // 1_000_000) + H
    async with FakeBinance({"SOL/USDT": real}) as fake, _feed(fake) as feed:
        result = await sync_candles(feed, session_factory, "SOL/USDT", "1h", since_ms=start, now_ms=now)
    stored = _stored(session_factory, "SOL/USDT")
    assert result.rows_added == len(real) == len(stored)
    assert result.gaps_remaining == check_candles(real, H).gaps == 2
    np.testing.assert_allclose(stored["close"].to_numpy(), real["close"].to_numpy())


async def test_sync_many_respects_the_concurrency_cap(session_factory: sessionmaker[Session]) -> None:
    data = {f"C{i}/USDT": make_candles(periods=30, seed=i) for i in range(6)}
    async with FakeBinance(data) as fake, _feed(fake, max_concurrency=2, candles_per_request=10) as feed:
        fake.latency = 0.01
        results = await sync_many(feed, session_factory, [(s, "1h") for s in data], since_ms=T0, now_ms=T0 + 30 * H)
    assert all(r.rows_added == 30 for r in results.values())  # type: ignore[union-attr]
    assert 1 <= fake.max_in_flight <= 2


async def test_sync_candles_without_since_takes_recent_history(session_factory: sessionmaker[Session]) -> None:
    from feeds import backfill

    candles = make_candles(periods=1500)
    async with FakeBinance({"BTC/USDT": candles}) as fake, _feed(fake) as feed:
        result = await sync_candles(feed, session_factory, "BTC/USDT", "1h", now_ms=T0 + 1500 * H + 60_000)
    assert result.rows_added == backfill.DEFAULT_HISTORY_BARS
    assert result.last_ts == T0 + 1499 * H
