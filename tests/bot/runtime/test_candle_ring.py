"""The cycle's in-memory window of stored bars stays equal to the database, also across a restart."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bot.runtime.candle_ring import CandleRing
from bot.runtime.cycle import Runtime, watched_entries
from bot.runtime.detector_pool import DetectorPool
from bot.runtime.fetch import missing_ranges
from bot.runtime.seed import seed_watchlist_from_config
from core.config import default_config
from feeds.pool import FeedPool
from storage.candles import load_candles_many, upsert_candles
from storage.db import open_database
from tests.conftest import _make_candles
from tests.fakes.binance import FakeBinance

STEP = 3_600_000
SYMBOLS = ["AAA/USDT", "BBB/USDT", "CCC/USDT"]


def _ms(ts: pd.Timestamp) -> int:
    return int(ts.value // 1_000_000)


def test_ring_serves_the_window_and_forgets_overwritten_and_deleted_bars() -> None:
    ring = CandleRing(bars=5)
    frame = _make_candles(8, seed=1)  # hourly bars 00:00 .. 07:00
    frame.index = frame.index.as_unit("ns").rename("time")  # what storage.candles gives
    ring.write("x", "1h", STEP, {"A": frame.drop(frame.index[3])})  # bar 03:00 is a hole
    end = _ms(frame.index[-1]) + 1
    got = ring.frames("x", "1h", ["A", "B"], start_ms=_ms(frame.index[3]), end_ms=end)
    assert list(got) == ["A"]  # a symbol without bars is left out, like load_candles_many
    pd.testing.assert_frame_equal(got["A"], frame.iloc[4:], check_freq=False)
    assert ring.count_new("x", "1h", {"A": frame.iloc[-3:]}) == 0
    assert ring.count_new("x", "1h", {"A": _make_candles(9, seed=1).iloc[-2:]}) == 1  # 08:00 is new
    ring.delete("x", "1h", "A", [_ms(frame.index[-1])])
    again = ring.frames("x", "1h", ["A"], start_ms=_ms(frame.index[3]), end_ms=end)
    pd.testing.assert_frame_equal(again["A"], frame.iloc[4:7], check_freq=False)
    assert ring.last_ts("x", "1h", ["A", "B"]) == {"A": _ms(frame.index[6]), "B": None}
    assert not ring.covers("x", "1h", _ms(frame.index[2]))  # 02:00 has been overwritten by 07:00
    with pytest.raises(ValueError, match="does not reach back"):
        ring.frames("x", "1h", ["A"], start_ms=_ms(frame.index[0]), end_ms=end)


def test_missing_ranges_are_the_runs_of_absent_bars() -> None:
    present = np.array([2, 3, 6], dtype=np.int64) * STEP
    assert missing_ranges(present, 0, 9 * STEP, STEP) == [(0, 2 * STEP), (4 * STEP, 6 * STEP), (7 * STEP, 9 * STEP)]
    assert missing_ranges(np.arange(4) * STEP, 0, 4 * STEP, STEP) == []


def _exchange_frames() -> dict[str, pd.DataFrame]:
    frames = {s: _make_candles(300, seed=i) for i, s in enumerate(SYMBOLS)}
    frames["BBB/USDT"] = frames["BBB/USDT"].drop(frames["BBB/USDT"].index[205:208])  # the exchange's own hole
    return frames


def _db_frames(factory, entries, now_ms: int, bars: int) -> dict[str, pd.DataFrame]:
    with factory() as s:
        loaded = load_candles_many(
            s, "binance", "1h", [e.symbol for e in entries], start_ms=now_ms - bars * STEP, end_ms=now_ms - STEP + 1
        )
    return {f"binance:{k}": v for k, v in loaded.items()}


def _assert_same(ring_frames: dict[str, pd.DataFrame], db_frames: dict[str, pd.DataFrame]) -> None:
    assert ring_frames.keys() == db_frames.keys()
    for key in ring_frames:
        pd.testing.assert_frame_equal(ring_frames[key], db_frames[key], check_freq=False)


async def test_ring_equals_the_database_after_cycles_and_after_a_restart(tmp_path: Path, db_url: str) -> None:
    url = db_url
    frames = _exchange_frames()
    bars = 120
    index = frames["AAA/USDT"].index
    async with FakeBinance(frames) as fake:
        cfg = default_config(
            database={"url": url},
            exchanges={"binance": {"ccxt_config": fake.ccxt_config()}},
            watchlist=[{"exchange": "binance", "symbol": s, "timeframe": "1h"} for s in SYMBOLS],
            detectors={"zscore": {"threshold": {"policy": "static", "value": 50.0}}},
            scheduler={"history_bars": bars},
        )
        _engine, factory = open_database(url)
        seed_watchlist_from_config(cfg, factory)  # what compose does on start
        first_now = _ms(index[200])
        with factory.begin() as s:  # stored by an older version: a bar that was still open at first_now
            upsert_candles(s, "binance", "AAA/USDT", "1h", frames["AAA/USDT"].iloc[[200]])
            upsert_candles(s, "binance", "CCC/USDT", "1h", frames["CCC/USDT"].iloc[150:160])  # an imported stretch

        def runtime(feeds: FeedPool) -> Runtime:
            return Runtime(cfg, factory, feeds, DetectorPool(cfg, factory, tmp_path / "models"))

        with factory() as s:
            entries = watched_entries(s, cfg, "1h")
        async with FeedPool(cfg.exchanges) as feeds:
            rt = runtime(feeds)
            for now in (first_now, *range(first_now + STEP, _ms(index[215]), STEP)):
                report = await rt.run_cycle("1h", now_ms=now)
                assert not report.errors, report.errors
                _assert_same(rt._load_frames(entries, now), _db_frames(factory, entries, now, bars))
            last_now = now
            first_report_added = report.candles_added
        assert first_report_added == len(SYMBOLS)  # one new bar per symbol per cycle

        # a restart: a new process, a new ring built from the database
        async with FeedPool(cfg.exchanges) as feeds:
            rt2 = runtime(feeds)
            _assert_same(rt2._load_frames(entries, last_now), _db_frames(factory, entries, last_now, bars))
            before = fake.requests["/api/v3/klines"]
            report = await rt2.run_cycle("1h", now_ms=last_now + STEP)
            assert not report.errors and report.candles_added == len(SYMBOLS)
            # the first cycle of a process asks once for the exchange's known hole, then only for the new bar
            assert fake.requests["/api/v3/klines"] - before == len(SYMBOLS) + 1
            _assert_same(
                rt2._load_frames(entries, last_now + STEP), _db_frames(factory, entries, last_now + STEP, bars)
            )
    bbb = rt2._load_frames(entries, last_now + STEP)["binance:BBB/USDT"]
    assert len(bbb) == bars - 3  # the exchange's hole stays a hole, in the ring as in the database


async def test_a_cycle_fetches_every_symbol_at_once_under_the_exchange_cap(tmp_path: Path) -> None:
    frames = {f"S{i:02d}/USDT": _make_candles(120, seed=i) for i in range(12)}
    index = next(iter(frames.values())).index
    async with FakeBinance(frames) as fake:
        fake.latency = 0.05  # every answer takes a while: requests overlap if the cycle lets them
        cfg = default_config(
            database={"url": f"sqlite:///{tmp_path / 'vigil.db'}"},
            exchanges={"binance": {"ccxt_config": fake.ccxt_config(), "max_concurrency": 4}},
            watchlist=[{"exchange": "binance", "symbol": s, "timeframe": "1h"} for s in frames],
            detectors={"zscore": {}},
            scheduler={"history_bars": 60},
        )
        _engine, factory = open_database(cfg.database.url)
        seed_watchlist_from_config(cfg, factory)  # what compose does on start
        async with FeedPool(cfg.exchanges) as feeds:
            runtime = Runtime(cfg, factory, feeds, DetectorPool(cfg, factory, tmp_path / "models"))
            report = await runtime.run_cycle("1h", now_ms=_ms(index[100]))
    assert not report.errors and report.candles_added == 12 * 60
    assert fake.requests["/api/v3/klines"] == 12
    assert 2 <= fake.max_in_flight <= 4  # concurrent, and never more than the exchange's cap
    assert {r["limit"] for r in fake.kline_requests} == {"60"}  # each asks for exactly the bars it lacks
