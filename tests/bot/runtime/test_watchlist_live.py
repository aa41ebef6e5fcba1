"""The watchlist table is the one source of truth, and the loop follows it while running.

Real cycles against the fake Binance (ccxt) and real chat commands against the
fake Bot API (python-telegram-bot): what the bot answers is what the loop does.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import select

from bot.runtime.compose import compose
from bot.runtime.scheduler import MainJob
from bot.telegram.application import running_application
from core.config import Config, default_config
from storage.db import open_database
from storage.models import Candle, Cycle, WatchlistEntry
from storage.watchlist import list_watch
from tests.bot.telegram.helpers import candles, say
from tests.fakes.binance import FakeBinance, make_candles
from tests.fakes.telegram import FakeTelegram

ADMIN = 4242
H = 3_600_000


def _config(
    tmp_path: Path, ex: FakeBinance, tg: FakeTelegram, watch: list[tuple[str, str]], **scheduler: Any
) -> Config:
    return default_config(
        database={"url": f"sqlite:///{tmp_path / 'vigil.db'}"},
        exchanges={"binance": {"ccxt_config": ex.ccxt_config(), "max_retries": 0}},
        watchlist=[{"exchange": "binance", "symbol": s, "timeframe": tf} for s, tf in watch],
        detectors={"zscore": {"threshold": {"policy": "static", "value": 50.0}, "params": {"window": 20}}},
        telegram={
            "token": tg.token,
            "base_url": tg.base_url,
            "base_file_url": tg.base_file_url,
            "allowed_chat_ids": [ADMIN],
            "admin_user_ids": [ADMIN],
        },
        alerts={"chart_dir": str(tmp_path / "charts"), "cooldown_minutes": 0},
        scheduler={"history_bars": 60, **scheduler},
    )


def _fetched(ex: FakeBinance) -> set[str]:
    return {q.get("symbol", "") for q in ex.kline_requests}


async def test_unwatch_of_a_config_market_survives_two_cycles_and_a_restart(tmp_path: Path) -> None:
    frames = {"BTC/USDT": candles(200, seed=1), "ETH/USDT": candles(200, seed=2)}
    close = int(frames["BTC/USDT"].index[120].value // 10**6) + H
    async with FakeBinance(frames) as ex, FakeTelegram() as tg:
        cfg = _config(tmp_path, ex, tg, [("BTC/USDT", "1h"), ("ETH/USDT", "1h")])
        _engine, factory = open_database(cfg.database.url)
        system = await compose(cfg, factory, model_root=tmp_path / "models")
        try:
            async with running_application(system.application, poll_timeout=1):
                await system.runtime.run_cycle("1h", now_ms=close)
                assert _fetched(ex) == {"BTCUSDT", "ETHUSDT"}
                assert await say(tg, "/unwatch BTC/USDT", chat_id=ADMIN) == ["Stopped watching BTC/USDT."]
                ex.kline_requests.clear()
                for later in (close + H, close + 2 * H):
                    await system.runtime.run_cycle("1h", now_ms=later)
                assert _fetched(ex) == {"ETHUSDT"}  # BTC is neither fetched nor scored any more
                [listed] = await say(tg, "/list", chat_id=ADMIN)
                assert "BTC/USDT" not in listed and "ETH/USDT 1h (binance), from the config file" in listed
        finally:
            await system.aclose()

        # a restart with the same config file: the config still lists BTC, the database says no
        ex.kline_requests.clear()
        system = await compose(cfg, factory, model_root=tmp_path / "models", with_application=False)
        try:
            await system.runtime.run_cycle("1h", now_ms=close + 3 * H)
        finally:
            await system.aclose()
        assert _fetched(ex) == {"ETHUSDT"}
        with factory() as s:
            assert [e.symbol for e in list_watch(s)] == ["ETH/USDT"]
            btc = s.scalars(select(WatchlistEntry).where(WatchlistEntry.symbol == "BTC/USDT")).one()
            assert btc.enabled is False and btc.last_checked_at is not None  # checked before, never re-added


async def test_watch_again_brings_a_removed_config_market_back_with_its_new_origin(tmp_path: Path) -> None:
    frames = {"BTC/USDT": candles(50, seed=1)}
    async with FakeBinance(frames) as ex, FakeTelegram() as tg:
        cfg = _config(tmp_path, ex, tg, [("BTC/USDT", "1h")])
        _engine, factory = open_database(cfg.database.url)
        system = await compose(cfg, factory, model_root=tmp_path / "models")
        try:
            async with running_application(system.application, poll_timeout=1):
                await say(tg, "/unwatch BTC/USDT", chat_id=ADMIN)
                replies = await say(tg, "/watch BTC/USDT 1h", chat_id=ADMIN, n=2)  # the answer, then its edit
                assert replies[0].startswith("Now watching BTC/USDT 1h on binance.")
                [listed] = await say(tg, "/list", chat_id=ADMIN)
        finally:
            await system.aclose()
    assert f"BTC/USDT 1h (binance), added in chat by {ADMIN}" in listed


@pytest.fixture
def seconds_market() -> dict[str, pd.DataFrame]:
    """One-second bars from an hour ago to ten minutes ahead, so new bars keep closing during the test."""
    start = (pd.Timestamp.now(tz="UTC") - pd.Timedelta(hours=1)).floor("1min")
    n = 70 * 60
    return {
        "BTC/USDT": make_candles(str(start), periods=n, timeframe="1s", seed=1),
        "SOL/USDT": make_candles(str(start), periods=n, timeframe="1s", seed=2),
    }


async def _wait(predicate: Any, timeout: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def test_watch_of_a_new_timeframe_is_scheduled_at_once_and_backfilled(
    tmp_path: Path, seconds_market: dict[str, pd.DataFrame]
) -> None:
    """``vigil run``'s main job, in process: /watch of a new timeframe runs at its next close, no restart."""
    async with FakeBinance(seconds_market, timeframe="1s") as ex, FakeTelegram() as tg:
        cfg = _config(tmp_path, ex, tg, [("BTC/USDT", "1m")], close_delay_seconds=0.2)
        job = MainJob(cfg, model_root=tmp_path / "models")
        run = asyncio.create_task(job.run())
        try:
            _engine, factory = open_database(cfg.database.url)

            def cycles(tf: str) -> list[Cycle]:
                with factory() as s:
                    return list(s.scalars(select(Cycle).where(Cycle.timeframe == tf, Cycle.finished_at.is_not(None))))

            await _wait(lambda: cycles("1m"))  # the catch-up cycle at start
            assert [j.id for j in job.scheduler.get_jobs() if j.id.startswith("cycle:")] == ["cycle:1m"]

            replies = await say(tg, "/watch SOL/USDT 1s", chat_id=ADMIN, n=2)
            assert replies[0] == "Now watching SOL/USDT 1s on binance. Fetching its recent history…"
            assert (
                replies[1]
                == "Now watching SOL/USDT 1s on binance. 60 bars of history stored: /chart SOL/USDT works now."
            )
            [caption] = await say(tg, "/chart SOL/USDT 1h", chat_id=ADMIN)  # works before any 1s cycle ran
            assert caption.startswith("SOL/USDT")

            assert "cycle:1s" in {j.id for j in job.scheduler.get_jobs()}
            await _wait(lambda: cycles("1s"))  # its first cycle, without a restart
            first = min(c.until_ms for c in cycles("1s"))
            with factory() as s:
                sol = s.scalars(select(Candle.ts).where(Candle.symbol == "SOL/USDT", Candle.timeframe == "1s")).all()
            assert first - 1000 in sol  # the cycle stored the bar that had just closed

            assert await say(tg, "/unwatch SOL/USDT", chat_id=ADMIN) == ["Stopped watching SOL/USDT."]
            await _wait(lambda: "cycle:1s" not in {j.id for j in job.scheduler.get_jobs()})
        finally:
            job.request_stop()
            await asyncio.wait_for(run, 60)


async def test_a_market_added_by_another_process_is_picked_up_by_the_poll(
    tmp_path: Path, seconds_market: dict[str, pd.DataFrame]
) -> None:
    async with FakeBinance(seconds_market, timeframe="1s") as ex, FakeTelegram() as tg:
        cfg = _config(tmp_path, ex, tg, [("BTC/USDT", "1m")], watchlist_poll_seconds=1)
        job = MainJob(cfg, model_root=tmp_path / "models")
        run = asyncio.create_task(job.run(catch_up=False))
        try:
            await _wait(lambda: job.scheduler is not None and job.scheduler.running)
            _engine, factory = open_database(cfg.database.url)
            with factory.begin() as s:  # what `vigil watch` in another process does
                from storage.watchlist import add_watch

                add_watch(s, "binance", "SOL/USDT", "5m", source="cli")
            await _wait(lambda: "cycle:5m" in {j.id for j in job.scheduler.get_jobs()})

            def sol_bars() -> int:
                with factory() as s:
                    return len(s.scalars(select(Candle.ts).where(Candle.symbol == "SOL/USDT")).all())

            await _wait(lambda: sol_bars() > 0)  # backfilled at once, not at the next 5 m close
        finally:
            job.request_stop()
            await asyncio.wait_for(run, 60)
