"""Real cycles end to end: ccxt against a fake Binance, PTB against a fake Bot API, SQLite.

The clock is passed to each cycle (``now_ms``), so the test walks bar by bar
through a market whose anomalies sit at known bars.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import func, select

from bot.runtime.compose import compose
from bot.runtime.cycle import Runtime
from bot.runtime.detector_pool import DetectorPool
from bot.runtime.seed import seed_watchlist_from_config
from core.config import default_config
from feeds.pool import FeedPool
from feeds.synthetic import generate_market
from storage.candles import candle_range
from storage.db import open_database
from storage.models import Alert, Candle, Cycle, Delivery, Event
from tests.fakes.binance import FakeBinance
from tests.fakes.telegram import FakeTelegram

CHAT = -1001


def _market() -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    market = generate_market(["AAA/USDT", "BBB/USDT"], days=12, timeframe="1h", seed=4242, faults=False)
    return {s: f[["open", "high", "low", "close", "volume"]] for s, f in market.candles.items()}, market.labels


@pytest.fixture
def zscore_only() -> dict[str, dict[str, object]]:
    return {"zscore": {"threshold": {"policy": "static", "value": 6.0}}}


async def test_cycles_store_candles_events_and_deliver_alert_texts_then_charts(
    tmp_path: Path, zscore_only: dict[str, dict[str, object]]
) -> None:
    frames, labels = _market()
    async with FakeBinance(frames) as fake_ex, FakeTelegram() as tg:
        cfg = default_config(
            database={"url": f"sqlite:///{tmp_path / 'vigil.db'}"},
            exchanges={"binance": {"ccxt_config": fake_ex.ccxt_config()}},
            watchlist=[{"exchange": "binance", "symbol": s, "timeframe": "1h"} for s in frames],
            detectors=zscore_only,
            telegram={
                "token": tg.token,
                "base_url": tg.base_url,
                "base_file_url": tg.base_file_url,
                "allowed_chat_ids": [CHAT],
            },
            alerts={"chart_dir": str(tmp_path / "charts"), "cooldown_minutes": 0},
            scheduler={"history_bars": 400},
        )
        _engine, factory = open_database(cfg.database.url)
        system = await compose(cfg, factory, model_root=tmp_path / "models", with_application=False)
        assert system.application is None and system.targets == [("telegram", CHAT)]
        runtime = system.runtime
        index = next(iter(frames.values())).index
        step = 3_600_000
        start = int(index[int(len(index) * 0.3)].value // 10**6)
        end = int(index[-1].value // 10**6) + step
        try:
            # first cycle backfills the history; then one cycle per bar close
            for now_ms in range(start, end + 1, step):
                report = await runtime.run_cycle("1h", now_ms=now_ms + 1234)  # a little after the close
                assert not report.errors, report.errors
        finally:
            await system.aclose()

        with factory() as s:
            for symbol, frame in frames.items():
                first, last, count = candle_range(s, "binance", symbol, "1h")
                assert last == int(frame.index[-1].value // 10**6)
                assert count == (last - first) // step + 1  # no holes
            n_events = s.scalar(select(func.count()).select_from(Event))
            alerts = s.scalars(select(Alert)).all()
            deliveries = s.scalars(select(Delivery)).all()
            cycles = s.scalars(select(Cycle)).all()
        assert n_events > 0 and alerts
        assert all(d.status == "sent" and d.chat_id == CHAT for d in deliveries)
        assert len(deliveries) == len(alerts)
        assert all(c.finished_at is not None for c in cycles)

        # each alert: its text with the buttons, then its chart as a reply to that text
        texts = [c for c in tg.calls("sendMessage", ok_only=True) if int(c.params["chat_id"]) == CHAT]
        photos = [c for c in tg.calls("sendPhoto", ok_only=True) if int(c.params["chat_id"]) == CHAT]
        assert len(texts) == len(photos) == len(alerts)
        assert all(c.files and next(iter(c.files.values())).startswith(b"\x89PNG") for c in photos)
        assert len({c.params["text"] for c in texts}) == len(texts)  # no alert sent twice
        assert len({c.params["caption"] for c in photos}) == len(photos)
        assert {c.params["reply_parameters"]["message_id"] for c in photos} == {d.message_id for d in deliveries}

        # the injected market anomalies after the warm-up were alerted on
        scored_from = pd.Timestamp(start, unit="ms", tz="UTC")
        market = labels[labels["kind"].isin(["flash_crash", "level_shift", "pump_dump", "volume_spike"])]
        market = market[market["start"] >= scored_from]
        with factory() as s:
            bars = {(e.symbol, e.bar_ts) for e in s.scalars(select(Event))}
        hits = sum(
            any(
                sym == lab.symbol and lab.start.value // 10**6 <= ts <= lab.end.value // 10**6 + 2 * step
                for sym, ts in bars
            )
            for lab in market.itertuples()
        )
        assert len(market) and hits / len(market) >= 0.5


async def test_restarted_runtime_scores_missed_bars_once(
    tmp_path: Path, zscore_only: dict[str, dict[str, object]]
) -> None:
    frames, _labels = _market()
    async with FakeBinance(frames) as fake_ex:
        cfg = default_config(
            database={"url": f"sqlite:///{tmp_path / 'vigil.db'}"},
            exchanges={"binance": {"ccxt_config": fake_ex.ccxt_config()}},
            watchlist=[{"exchange": "binance", "symbol": s, "timeframe": "1h"} for s in frames],
            detectors=zscore_only,
            alerts={"chart_dir": str(tmp_path / "charts"), "cooldown_minutes": 0},
            scheduler={"history_bars": 400},
        )
        _engine, factory = open_database(cfg.database.url)
        seed_watchlist_from_config(cfg, factory)  # what compose does on start
        index = next(iter(frames.values())).index
        step = 3_600_000
        t1 = int(index[150].value // 10**6)
        t2 = int(index[-1].value // 10**6) + step

        async def cycle(now_ms: int) -> None:
            async with FeedPool(cfg.exchanges) as feeds:
                runtime = Runtime(cfg, factory, feeds, DetectorPool(cfg, factory, tmp_path / "m"))
                await runtime.run_cycle("1h", now_ms=now_ms)

        await cycle(t1)
        with factory() as s:
            first_events = s.scalar(select(func.count()).select_from(Event))
        await cycle(t2)  # "downtime": everything between t1 and t2 is scored now, once
        await cycle(t2)  # and a repeat of the same cycle adds nothing
        with factory() as s:
            events = s.scalars(select(Event)).all()
            candles = s.scalar(select(func.count()).select_from(Candle))
        assert candles == sum(len(f) for f in frames.values())
        assert len(events) > first_events
        assert len({(e.symbol, e.detector, e.bar_ts) for e in events}) == len(events)
        assert min(e.bar_ts for e in events) >= t1 - step
