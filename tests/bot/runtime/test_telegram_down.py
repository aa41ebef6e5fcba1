"""``vigil run``'s main job with the Bot API unreachable: surveillance never waits for Telegram.

The fake Bot API is down (connection refused) when the job starts. The loop
must start anyway, score the bars it missed and queue their alerts; the bot
connects in the background with backoff and, once the fake comes back, the
queued alerts go out exactly once. Shutdown closes every client, also when
Telegram never came back.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import func, select

from bot.runtime.scheduler import MainJob
from core.config import Config, default_config
from storage.db import open_database
from storage.models import Alert, Cycle, Delivery, utcnow
from tests.bot.runtime.test_restart import SPIKE_AGO, _frames
from tests.bot.telegram.helpers import say
from tests.fakes.binance import FakeBinance
from tests.fakes.telegram import FakeTelegram

CHAT = 777
EXPECTED_ALERTS = sum(len(v) for v in SPIKE_AGO.values())


def _config(tmp_path: Path, ex: FakeBinance, tg: FakeTelegram) -> Config:
    return default_config(
        database={"url": f"sqlite:///{tmp_path / 'vigil.db'}"},
        exchanges={"binance": {"ccxt_config": ex.ccxt_config(), "max_retries": 1}},
        watchlist=[{"exchange": "binance", "symbol": s, "timeframe": "1m"} for s in SPIKE_AGO],
        detectors={"zscore": {"threshold": {"policy": "static", "value": 8.0}, "params": {"window": 120}}},
        telegram={
            "token": tg.token,
            "base_url": tg.base_url,
            "base_file_url": tg.base_file_url,
            "allowed_chat_ids": [CHAT],
            "admin_user_ids": [CHAT],
            "retry_max_seconds": 0.5,
        },
        alerts={"chart_dir": str(tmp_path / "charts"), "cooldown_minutes": 0},
        scheduler={"history_bars": 300, "close_delay_seconds": 1},
    )


def _market(tmp_path: Path) -> tuple[dict[str, pd.DataFrame], Any]:
    now_min = pd.Timestamp.now(tz="UTC").floor("1min")
    frames = _frames(now_min)
    last_closed = int(now_min.value // 10**6) - 60_000
    _engine, factory = open_database(f"sqlite:///{tmp_path / 'vigil.db'}")
    with factory.begin() as s:  # the bot last finished a cycle 40 minutes ago: the catch-up scores the spikes
        s.add(Cycle(timeframe="1m", until_ms=last_closed + 60_000 - 40 * 60_000, finished_at=utcnow()))
    return frames, factory


async def _wait(predicate: Any, timeout: float = 60.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


def _finished_cycles(factory: Any) -> int:
    with factory() as s:
        return int(s.scalar(select(func.count()).select_from(Cycle).where(Cycle.finished_at.is_not(None))) or 0)


def _counts(factory: Any) -> dict[str, int]:
    with factory() as s:
        return {st: n for st, n in s.execute(select(Delivery.status, func.count()).group_by(Delivery.status))}


async def test_run_with_the_bot_api_down_scores_and_delivers_the_queued_alerts_once_it_is_back(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    frames, factory = _market(tmp_path)
    async with FakeBinance(frames) as ex, FakeTelegram() as tg:
        await tg.go_down()
        job = MainJob(_config(tmp_path, ex, tg), model_root=tmp_path / "models")
        run = asyncio.create_task(job.run())
        try:
            await _wait(lambda: _finished_cycles(factory) >= 2)  # the catch-up cycle finished: scored and queued
            assert _counts(factory) == {"pending": EXPECTED_ALERTS}
            with factory() as s:
                assert {d.attempts for d in s.scalars(select(Delivery))} == {0}  # queued, no attempt burnt
            assert not run.done()
            await asyncio.sleep(1.5)  # a few reconnection attempts go by
            assert _counts(factory) == {"pending": EXPECTED_ALERTS}

            await tg.come_back()
            await _wait(lambda: _counts(factory) == {"sent": EXPECTED_ALERTS})
            # the charts follow their texts: wait for them too, so /status gets the only reply
            await _wait(lambda: len(tg.calls("sendPhoto", ok_only=True)) >= EXPECTED_ALERTS)
            [status] = await say(tg, "/status", chat_id=CHAT)
        finally:
            job.request_stop()
            await asyncio.wait_for(run, 60)

    with factory() as s:
        alerts = s.scalar(select(func.count()).select_from(Alert))
    photos = [c for c in tg.calls("sendPhoto", ok_only=True) if c.params.get("chat_id") == CHAT]
    assert len(photos) == alerts == EXPECTED_ALERTS
    assert len({c.params["caption"] for c in photos}) == alerts  # each alert exactly once
    assert "Telegram: connected" in status and "unreachable for" in status
    telegram_logs = [r for r in caplog.records if "Telegram" in r.getMessage()]
    assert any(r.levelno == logging.WARNING and "unreachable" in r.getMessage() for r in telegram_logs)
    assert any("reachable again after" in r.getMessage() for r in telegram_logs)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], [r.getMessage() for r in caplog.records]


async def test_shutdown_with_telegram_never_back_closes_every_client(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    frames, factory = _market(tmp_path)
    async with FakeBinance(frames) as ex, FakeTelegram() as tg:
        await tg.go_down()
        job = MainJob(_config(tmp_path, ex, tg), model_root=tmp_path / "models")
        run = asyncio.create_task(job.run(catch_up=True))
        await _wait(lambda: _finished_cycles(factory) >= 2)
        assert job.system is not None and job.system.feeds.open_exchanges == ["binance"]
        job.request_stop()
        await asyncio.wait_for(run, 60)  # returns normally although Telegram never answered
        assert job.system.feeds.open_exchanges == []
        assert job.application.bot.request._client.is_closed  # PTB's HTTP client, closed although never started
    gc.collect()
    await asyncio.sleep(0)
    unclosed = [r for r in caplog.records if "Unclosed" in r.getMessage()]
    assert not unclosed
    assert _counts(factory) == {"pending": EXPECTED_ALERTS}  # still queued for the next start
