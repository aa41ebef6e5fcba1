"""Candles over the exchange's kline WebSocket (ccxt.pro), with REST filling whatever the stream missed.

The real ccxt.pro client talks to ``tests.fakes.binance_kline_ws`` (WebSocket) and the real
ccxt client to ``tests.fakes.binance`` (REST); the test closes bars on the fake's clock and
runs a cycle at each close, counting REST kline requests.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pandas as pd

from bot.runtime.cycle import Runtime, watched_entries
from bot.runtime.detector_pool import DetectorPool
from bot.runtime.seed import seed_watchlist_from_config
from core.config import default_config
from feeds.pool import FeedPool
from storage.candles import load_candles_many
from storage.db import open_database
from tests.conftest import _make_candles
from tests.fakes.binance import FakeBinance
from tests.fakes.binance_kline_ws import FakeKlineStream

STEP = 60_000
SYMBOLS = ["AAA/USDT", "BBB/USDT", "CCC/USDT"]


async def _until(predicate, timeout: float = 15.0) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met")
        await asyncio.sleep(0.02)


async def test_bars_come_from_the_stream_and_rest_fills_what_it_missed(tmp_path: Path) -> None:
    frames = {}
    for i, symbol in enumerate(SYMBOLS):
        frame = _make_candles(300, seed=i)
        frame.index = pd.date_range("2024-03-01", periods=300, freq="1min", tz="UTC")
        frames[symbol] = frame
    index = frames["AAA/USDT"].index
    async with FakeBinance(frames, timeframe="1m") as rest, FakeKlineStream(frames, timeframe="1m") as ws:
        cfg = default_config(
            database={"url": f"sqlite:///{tmp_path / 'vigil.db'}"},
            exchanges={"binance": {"ccxt_config": ws.ccxt_config(rest.ccxt_config()), "candles": "websocket"}},
            watchlist=[{"exchange": "binance", "symbol": s, "timeframe": "1m"} for s in SYMBOLS],
            detectors={"zscore": {"threshold": {"policy": "static", "value": 50.0}}},
            scheduler={"history_bars": 100},
        )
        _engine, factory = open_database(cfg.database.url)
        seed_watchlist_from_config(cfg, factory)  # what compose does on start
        with factory() as s:
            entries = watched_entries(s, cfg, "1m")
        async with FeedPool(cfg.exchanges) as feeds:
            runtime = Runtime(cfg, factory, feeds, DetectorPool(cfg, factory, tmp_path / "models"))
            stream = await feeds.stream("binance")
            assert stream is not None

            def requests() -> int:
                return rest.requests["/api/v3/klines"]

            async def cycle_at(i: int) -> tuple[int, int]:
                """Close bar i - 1 on the fake's clock, wait for the messages, run the cycle; (requests, added)."""
                now = int(index[i].value // 1_000_000)
                if await ws.close_bar(now):
                    await _until(lambda: all(len(stream.closed_bars(s, "1m", now - STEP, now)) for s in live))
                before = requests()
                report = await runtime.run_cycle("1m", now_ms=now)
                assert not report.errors, report.errors
                return requests() - before, report.candles_added

            live = SYMBOLS
            first = await cycle_at(150)  # the history comes over REST; the stream subscribes meanwhile
            assert first == (len(SYMBOLS), 100 * len(SYMBOLS))
            await _until(lambda: len(ws.subscribed) == len(SYMBOLS))
            assert ws.subscribed == {"aaausdt@kline_1m", "bbbusdt@kline_1m", "cccusdt@kline_1m"}

            for i in range(151, 155):  # every new bar arrives over the stream: no request at all
                assert await cycle_at(i) == (0, len(SYMBOLS))

            ws.silent = {"CCC/USDT"}  # one symbol's messages stop: REST asks for that one only
            live = ["AAA/USDT", "BBB/USDT"]
            assert await cycle_at(155) == (1, len(SYMBOLS))
            ws.silent = set()
            live = SYMBOLS

            await ws.disconnect_all()  # the connection drops; the bar closing meanwhile comes over REST
            assert (await cycle_at(156))[1] == len(SYMBOLS)
            await _until(lambda: len(ws.subscribed) == len(SYMBOLS))  # ccxt re-subscribed
            assert await cycle_at(157) == (0, len(SYMBOLS))

            now = int(index[157].value // 1_000_000)
            ring = runtime._load_frames(entries, now)
        with factory() as s:
            stored = load_candles_many(s, "binance", "1m", SYMBOLS, start_ms=now - 100 * STEP, end_ms=now)
    for symbol in SYMBOLS:  # what was stored (and is scored) is what the exchange has, bar for bar
        expected = frames[symbol].loc[: pd.Timestamp(now - STEP, unit="ms", tz="UTC")].iloc[-100:]
        got = stored[symbol]
        assert list(got.index) == list(expected.index)
        pd.testing.assert_frame_equal(got.reset_index(drop=True), expected.reset_index(drop=True))
        pd.testing.assert_frame_equal(ring[f"binance:{symbol}"], got, check_freq=False)
