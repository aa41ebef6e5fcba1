"""Order-book snapshots: the per-bar numbers, ccxt against the fake Binance depth endpoint, storage."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sqlalchemy.orm import Session, sessionmaker

from core.config import ExchangeConfig
from core.errors import BadSymbolError, DataSourceError
from feeds.exchange import ExchangeFeed
from feeds.orderbook import BOOK_COLUMNS, book_features, fetch_book_features
from feeds.retry import RetryPolicy
from storage.book import load_book_many, prune_book, upsert_book
from tests.fakes.binance import FakeBinance, make_candles

FAST = RetryPolicy(max_retries=1, base_delay=0.001, max_delay=0.002)


def test_book_features_from_a_hand_made_book() -> None:
    book = {
        "bids": [[99.9, 10.0], [99.0, 5.0], [94.0, 100.0]],  # 94 is outside 5 %
        "asks": [[100.1, 2.0], [100.9, 1.0], [104.0, 3.0]],
    }
    f = book_features(book)
    assert f["book_spread_bps"] == pytest.approx(0.2 / 100.0 * 1e4)
    bid1, ask1 = 99.9 * 10 + 99.0 * 5, 100.1 * 2 + 100.9 * 1
    assert f["book_imbalance_1pct"] == pytest.approx((bid1 - ask1) / (bid1 + ask1))
    assert f["book_depth_1pct"] == pytest.approx(bid1 + ask1)
    ask5 = ask1 + 104.0 * 3
    assert f["book_imbalance_5pct"] == pytest.approx((bid1 - ask5) / (bid1 + ask5))


def test_a_one_sided_or_empty_book_says_nothing() -> None:
    assert all(np.isnan(v) for v in book_features({"bids": [[1.0, 1.0]], "asks": []}).values())
    with pytest.raises(DataSourceError, match="unreadable bid levels"):
        book_features({"bids": [["x"]], "asks": [[1.0, 1.0]]})


async def test_snapshot_through_ccxt_against_the_fake_depth_endpoint() -> None:
    candles = {"BTC/USDT": make_candles(periods=10, price=50_000.0)}
    async with FakeBinance(candles) as fake:
        fake.books["BTC/USDT"] = {
            "bids": [[49_990.0, 3.0], [49_900.0, 1.0]],
            "asks": [[50_010.0, 1.0], [50_100.0, 1.0]],
        }
        async with ExchangeFeed("binance", ExchangeConfig(ccxt_config=fake.ccxt_config()), retry=FAST) as feed:
            f = await fetch_book_features(feed, "BTC/USDT", limit=20)
            assert fake.requests["depth:BTC/USDT"] == 1
            assert f["book_spread_bps"] == pytest.approx(20 / 50_000 * 1e4)
            bids, asks = 49_990.0 * 3 + 49_900.0, 50_010.0 + 50_100.0
            assert f["book_imbalance_1pct"] == pytest.approx((bids - asks) / (bids + asks))
            default = await fetch_book_features(feed, "BTC/USDT", limit=5)
            assert set(default) == set(BOOK_COLUMNS)
            with pytest.raises(DataSourceError, match="fetch_order_book BTC/USDT"):
                await feed.fetch_order_book("BTC/USDT", limit=7)  # Binance accepts only its own depths
            with pytest.raises(BadSymbolError):
                await feed.fetch_order_book("NOPE/USDT", limit=5)


async def test_feeds_without_books_are_named() -> None:
    class Replay:
        name = "replay"

    with pytest.raises(DataSourceError, match="offers no order books"):
        await fetch_book_features(Replay(), "X/Y", 5)


def test_book_storage_round_trip_and_pruning(session_factory: sessionmaker[Session]) -> None:
    t0 = int(pd.Timestamp("2024-01-01", tz="UTC").value // 1_000_000)
    h = 3_600_000
    with session_factory.begin() as s:
        upsert_book(s, "binance", "BTC/USDT", t0, {"book_spread_bps": 1.5, "book_imbalance_1pct": 0.2})
        upsert_book(s, "binance", "BTC/USDT", t0 + h, {"book_spread_bps": 2.0, "book_imbalance_1pct": float("nan")})
        upsert_book(s, "binance", "BTC/USDT", t0 + h, {"book_spread_bps": 2.5})  # a redone cycle overwrites
        upsert_book(s, "okx", "BTC/USDT", t0, {"book_spread_bps": 9.0})
    with session_factory() as s:
        got = load_book_many(s, "binance", ["BTC/USDT", "ETH/USDT"], start_ms=t0, end_ms=t0 + 2 * h)
    assert list(got) == ["BTC/USDT"]
    frame = got["BTC/USDT"]
    assert frame["book_spread_bps"].tolist() == [1.5, 2.5]
    assert frame["book_imbalance_1pct"].iloc[0] == 0.2 and np.isnan(frame["book_imbalance_1pct"].iloc[1])
    with session_factory.begin() as s:
        assert prune_book(s, before_ms=t0 + h) == 2
    with session_factory() as s:
        assert len(load_book_many(s, "binance", ["BTC/USDT"], start_ms=0, end_ms=t0 + 2 * h)["BTC/USDT"]) == 1
