"""The synthetic market through the feed: served by FakeBinance, synced, social read back from its files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sqlalchemy.orm import Session, sessionmaker

from core.config import ExchangeConfig, SocialSourceConfig
from feeds.backfill import sync_candles
from feeds.exchange import ExchangeFeed
from feeds.retry import RetryPolicy
from feeds.social import build_social_sources
from feeds.synthetic import generate_market
from feeds.synthetic_io import write_market
from storage.candle_csv import check_candles
from storage.candles import load_candles
from storage.db import session_scope
from tests.fakes.binance import FakeBinance

H = 3_600_000


async def test_synthetic_market_syncs_with_its_planted_gaps(session_factory: sessionmaker[Session]) -> None:
    market = generate_market(2, days=20, timeframe="1h", seed=4, faults=True)  # seed 4 plants a gap in SYN000
    symbol, frame = next(iter(market.candles.items()))
    candles = frame[["open", "high", "low", "close", "volume"]]
    start = int(candles.index[0].value // 1_000_000)
    now = int(candles.index[-1].value // 1_000_000) + H
    async with FakeBinance({symbol: candles}) as fake:
        cfg = ExchangeConfig(ccxt_config=fake.ccxt_config(), candles_per_request=100)
        async with ExchangeFeed("binance", cfg, retry=RetryPolicy(max_retries=0)) as feed:
            result = await sync_candles(feed, session_factory, symbol, "1h", since_ms=start, now_ms=now)
    with session_scope(session_factory) as s:
        stored = load_candles(s, "binance", symbol, "1h")
    assert result.rows_added == len(candles) == len(stored)
    assert result.gaps_remaining == check_candles(candles, H).gaps == 1
    np.testing.assert_allclose(stored["close"].to_numpy(), candles["close"].to_numpy())


async def test_csv_social_source_reads_synth_output(tmp_path: Path) -> None:
    market = generate_market(1, days=3, timeframe="1h", seed=1, faults=False)
    write_market(market, tmp_path)
    symbol, frame = next(iter(market.candles.items()))
    stem = symbol.replace("/", "_")
    (source,) = build_social_sources(
        [SocialSourceConfig(name="synth", kind="csv", options={"path": str(tmp_path / "social-{symbol_file}-1h.csv")})]
    )
    start = int(frame.index[0].value // 1_000_000)
    got = await source.fetch(symbol, start, start + 24 * H)
    assert (tmp_path / f"social-{stem}-1h.csv").is_file()
    np.testing.assert_allclose(got.to_numpy(), frame["social_volume"].to_numpy()[:24], rtol=1e-9)
