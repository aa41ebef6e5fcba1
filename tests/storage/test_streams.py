"""What the trade streams keep: chunk rows (idempotent), raw trades (deduplicated), pruning."""

from __future__ import annotations

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from storage.models import StreamTrade, TradeChunk
from storage.streams import load_chunks, prune_stream_data, store_chunks, store_stream_trades


def test_chunks_round_trip_and_a_reclosed_chunk_replaces_its_row(session_factory: sessionmaker[Session]) -> None:
    counts = np.array([[2, 10, 5.5, 1.25, 1.3], [0, 3, 1.0, 1.2, 1.2]])
    with session_factory.begin() as s:
        store_chunks(s, "binance", 15, ["A/USDT", "A/USDT"], np.array([0, 15_000]), counts, np.array([0.1, np.nan]))
        store_chunks(s, "binance", 15, ["A/USDT"], np.array([15_000]), counts[1:] * 2, np.array([0.9]))
    with session_factory() as s:
        frame = load_chunks(s, "binance", "A/USDT", 15)
        assert s.scalar(select(func.count()).select_from(TradeChunk)) == 2
    assert frame.index.as_unit("ms").asi8.tolist() == [0, 15_000]
    assert frame["rush"].tolist() == [2.0, 0.0] and frame["trades"].tolist() == [10.0, 6.0]
    assert frame["score"].iloc[0] == 0.1 and frame["score"].iloc[1] == 0.9


def test_raw_trades_are_stored_once_and_pruned_by_age(session_factory: sessionmaker[Session]) -> None:
    ids = np.arange(100, 110)
    ts = np.arange(10) * 60_000
    with session_factory.begin() as s:
        store_stream_trades(s, "binance", "A/USDT", ids, ts, np.ones(10), np.ones(10), ids % 2 == 0)
        store_stream_trades(s, "binance", "A/USDT", ids[:5], ts[:5], np.ones(5), np.ones(5), ids[:5] % 2 == 0)
        store_chunks(s, "binance", 15, ["A/USDT"] * 2, np.array([0, 600_000]), np.ones((2, 5)), None)
    with session_factory.begin() as s:
        assert s.scalar(select(func.count()).select_from(StreamTrade)) == 10
        assert prune_stream_data(s, chunks_before_ms=300_000, trades_before_ms=300_000) == (1, 5)
    with session_factory() as s:
        assert s.scalar(select(func.min(StreamTrade.ts))) == 300_000
        assert s.scalar(select(func.count()).select_from(TradeChunk)) == 1
