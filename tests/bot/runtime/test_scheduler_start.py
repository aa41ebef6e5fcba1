"""How ``vigil run``'s main job starts: cycles a killed run left behind, and catch-up cycles that do not queue."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import select

from bot.runtime.scheduler import MainJob
from core.config import default_config
from storage.cycles import ABANDONED, scored_until
from storage.db import open_database
from storage.models import Cycle, utcnow
from tests.fakes.binance import FakeBinance, make_candles


async def _wait(predicate: Any, timeout: float = 60.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def test_start_closes_abandoned_cycles_and_catches_up_every_timeframe_at_once(tmp_path: Path) -> None:
    start = (pd.Timestamp.now(tz="UTC") - pd.Timedelta(hours=6)).floor("1h")
    frames = {
        s: make_candles(str(start), periods=7 * 60, timeframe="1m", seed=i) for i, s in enumerate(["A/USDT", "B/USDT"])
    }
    url = f"sqlite:///{tmp_path / 'vigil.db'}"
    _engine, factory = open_database(url)
    with factory.begin() as s:  # a previous run was killed in the middle of a 1m cycle
        s.add(Cycle(timeframe="1m", started_at=utcnow() - pd.Timedelta(minutes=5)))
    async with FakeBinance(frames, timeframe="1m") as ex:
        ex.latency = 0.3  # each request takes a while, so a cycle takes a while
        cfg = default_config(
            database={"url": url},
            exchanges={"binance": {"ccxt_config": ex.ccxt_config(), "max_retries": 0}},
            watchlist=[
                {"exchange": "binance", "symbol": "A/USDT", "timeframe": "1m"},
                {"exchange": "binance", "symbol": "B/USDT", "timeframe": "5m"},
            ],
            detectors={"zscore": {"params": {"window": 20}}},
            alerts={"chart_dir": str(tmp_path / "charts")},
            scheduler={"history_bars": 50},
        )
        job = MainJob(cfg, model_root=tmp_path / "models")
        run = asyncio.create_task(job.run())

        def finished() -> dict[str, Cycle]:
            with factory() as s:
                rows = s.scalars(select(Cycle).where(Cycle.finished_at.is_not(None), Cycle.until_ms.is_not(None)))
                return {c.timeframe: c for c in rows}

        try:
            await _wait(lambda: set(finished()) == {"1m", "5m"})
        finally:
            job.request_stop()
            await asyncio.wait_for(run, 60)

    one, five = finished()["1m"], finished()["5m"]
    # the catch-up cycles ran side by side: neither waited for the other to finish
    assert one.started_at < five.finished_at and five.started_at < one.finished_at
    with factory() as s:
        [abandoned] = s.scalars(select(Cycle).where(Cycle.until_ms.is_(None))).all()
        assert abandoned.finished_at is not None and abandoned.last_error == ABANDONED
        assert scored_until(s, "1m") == one.until_ms  # an abandoned cycle never counts as scored
