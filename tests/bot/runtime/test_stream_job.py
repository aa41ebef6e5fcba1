"""The trade-stream pump job end to end: ccxt.pro against a fake Binance WebSocket, PTB against a fake Bot API.

A synthetic tape with planted pumps is replayed in accelerated time; the job is built by
``bot.runtime.compose`` as ``vigil run`` builds it, with the shipped chunk model.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select

from bot.runtime.compose import compose
from core.config import default_config
from feeds.synthetic_trades import generate_trades
from storage.db import open_database
from storage.models import Alert, Delivery, Event
from storage.streams import load_chunks
from tests.fakes.binance_ws import FakeBinanceWS, ReplayClock, StreamFaults
from tests.fakes.telegram import FakeTelegram

CHAT = -1001
CHUNK_MS = 15_000


def _tape():  # noqa: ANN202
    return generate_trades(5, minutes=30, seed=77, pumps_per_hour=1.5, negatives_per_hour=2.0, quiet_minutes=8)


def _counts(trades: pd.DataFrame) -> pd.DataFrame:
    """Per 15 s chunk: rush orders, orders, volume, last and max price, counted straight from the trades."""
    t = trades.assign(buy=trades["side"] == "buy")
    orders = t.groupby(["timestamp", "buy"], sort=True).agg(
        fills=("price", "size"), price=("price", "last"), top=("price", "max"), volume=("amount", "sum")
    )
    orders = orders.reset_index()
    orders["rush"] = orders["buy"] & (orders["fills"] > 1)
    orders["chunk"] = orders["timestamp"] - orders["timestamp"] % CHUNK_MS
    per = orders.groupby("chunk").agg(
        rush=("rush", "sum"),
        trades=("fills", "size"),
        volume=("volume", "sum"),
        price=("price", "last"),
        price_max=("top", "max"),
    )
    return per


async def _replay(tmp_path: Path, tape, clock: ReplayClock, until_ms: int, *, faults: StreamFaults | None = None):  # noqa: ANN001, ANN202
    async with FakeBinanceWS(tape.trades, clock, faults=faults) as ex, FakeTelegram() as tg:
        cfg = default_config(
            database={"url": f"sqlite:///{tmp_path / 'vigil.db'}"},
            exchanges={"binance": {"ccxt_config": ex.ccxt_config()}},
            streams={"symbols": tape.symbols, "chunk_seconds": 15},
            telegram={
                "token": tg.token,
                "base_url": tg.base_url,
                "base_file_url": tg.base_file_url,
                "allowed_chat_ids": [CHAT],
            },
            alerts={"chart_dir": str(tmp_path / "charts")},
            detectors={"zscore": {}},
        )
        _engine, factory = open_database(cfg.database.url)
        system = await compose(cfg, factory, with_application=False, stream_clock=clock)
        job = system.stream
        assert job is not None
        try:
            await job.start()  # history over REST while the replay waits at its origin
            clock.resume()
            await asyncio.sleep(clock.wall_delay(until_ms))
            while min(job.book.next_chunk_ms(s) or 0 for s in tape.symbols) < until_ms - CHUNK_MS:
                await asyncio.sleep(0.05)  # the last chunks' rounds (a slow machine lags behind the replay)
            await asyncio.sleep(0.3)
            await system.dispatcher.flush()
        finally:
            await system.aclose()
        return factory, job, tg, ex


def _window(tape) -> tuple[int, int, pd.Series]:  # noqa: ANN001
    pump = tape.pumps().sort_values("start").iloc[0]
    origin = int(pump.start) - 90_000  # the stream fetches 5 minutes of history over REST at start
    until = int(pump.peak) + 90_000
    return origin, until, pump


@pytest.mark.slow
async def test_pump_alert_reaches_telegram_with_chart_and_seconds_since_the_abnormal_chunk(tmp_path: Path) -> None:
    tape = _tape()
    origin, until, pump = _window(tape)
    clock = ReplayClock(origin, speed=30, paused=True)
    factory, job, tg, _ex = await _replay(tmp_path, tape, clock, until)

    with factory() as s:
        events = s.scalars(select(Event)).all()
        alerts = s.scalars(select(Alert)).all()
        deliveries = s.scalars(select(Delivery)).all()
    mine = [e for e in events if e.symbol == pump.symbol]
    assert len(mine) == 1  # one alert per symbol and pump, however many chunks stay abnormal
    event = mine[0]
    assert pump.start - CHUNK_MS < event.bar_ts <= pump.peak  # found while the price still rose
    assert event.timeframe == "15s" and event.details["grain"] == "trades" and event.details["rush_orders"] > 5
    assert len(deliveries) == len(alerts) and all(d.status == "sent" for d in deliveries)
    # the text at once, then the chart as a reply to it
    texts = [c for c in tg.calls("sendMessage", ok_only=True) if int(c.params["chat_id"]) == CHAT]
    text = next(c.params["text"] for c in texts if pump.symbol in c.params["text"])
    assert "rush orders in 15 s" in text and "after the first abnormal chunk closed" in text
    photos = [c for c in tg.calls("sendPhoto", ok_only=True) if int(c.params["chat_id"]) == CHAT]
    assert len(photos) == len(texts) and all(next(iter(c.files.values())).startswith(b"\x89PNG") for c in photos)


@pytest.mark.slow
async def test_stream_faults_miss_no_chunk_and_send_no_duplicate_alert(tmp_path: Path) -> None:
    tape = _tape()
    origin, until, pump = _window(tape)
    clock = ReplayClock(origin, speed=30, paused=True)
    faults = StreamFaults(disconnect_every_s=30, drop_rate=0.01, duplicate_rate=0.01, reorder_rate=0.005, seed=5)
    factory, job, tg, ex = await _replay(tmp_path, tape, clock, until, faults=faults)
    assert ex.disconnects >= 5 and ex.dropped > 0 and ex.duplicated > 0
    assert job.stream.stats.reconnects >= 5 and job.stream.stats.backfilled > 0

    first = origin - origin % CHUNK_MS - 20 * CHUNK_MS  # the stream started with 20 chunks of history
    with factory() as s:
        for symbol in tape.symbols:
            stored = load_chunks(s, "binance", symbol, 15, start_ms=first, end_ms=until - CHUNK_MS)
            trades = tape.for_symbol(symbol)
            want = _counts(trades[trades["timestamp"] >= first])
            want = want[(want.index >= stored.index.as_unit("ms").asi8[0]) & (want.index < until - CHUNK_MS)]
            got = stored.set_index(stored.index.as_unit("ms").asi8)
            # every chunk closed, none twice, and with all its trades despite the faults
            assert (np.diff(got.index) == CHUNK_MS).all()
            busy = got.loc[want.index]
            np.testing.assert_array_equal(busy["trades"].to_numpy(), want["trades"].to_numpy())
            np.testing.assert_array_equal(busy["rush"].to_numpy(), want["rush"].to_numpy())
            np.testing.assert_allclose(busy["volume"].to_numpy(), want["volume"].to_numpy(), rtol=1e-9)
        events = s.scalars(select(Event)).all()
    assert len([e for e in events if e.symbol == pump.symbol]) == 1
    texts = [c.params["text"] for c in tg.calls("sendMessage", ok_only=True)]
    assert len(texts) == len(set(texts)) == len(events)  # no alert twice


@pytest.mark.parametrize("chunk_seconds", [4, 61])
def test_chunk_length_outside_5_to_60_seconds_is_refused(chunk_seconds: int) -> None:
    from core.errors import ConfigError

    with pytest.raises(ConfigError, match="streams.chunk_seconds"):
        default_config(streams={"chunk_seconds": chunk_seconds})
