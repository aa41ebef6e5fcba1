"""History for a market the moment it is watched, not at its next candle close.

Without this, ``/watch SOL/USDT 15m`` would leave SOL with no stored candles
until the first 15 m cycle, so ``/chart`` right after ``/watch`` had nothing
to draw. :class:`Backfiller` fetches the last ``scheduler.history_bars`` bars
(the window a cycle scores over) through the same feeds and the same
resumable ``feeds.backfill.sync_candles`` the cycle uses. Two callers asking
for the same market at once (the chat's ``/watch`` and the scheduler noticing
the new row) share one fetch.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from core.timeframes import timeframe_to_ms
from feeds.pool import FeedPool

__all__ = ["Backfilled", "Backfiller"]

log = logging.getLogger(__name__)

Market = tuple[str, str, str]  # (exchange, symbol, timeframe)


@dataclass(frozen=True)
class Backfilled:
    """What a backfill left stored for one market."""

    exchange: str
    symbol: str
    timeframe: str
    bars: int  # bars stored for the market afterwards, within the history window
    added: int  # of which this call fetched


class Backfiller:
    """``await backfiller(exchange, symbol, timeframe)`` stores the market's recent history and says how much."""

    def __init__(
        self,
        feeds: FeedPool,
        factory: sessionmaker[Session],
        history_bars: int,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.feeds = feeds
        self.factory = factory
        self.history_bars = history_bars
        self.clock = clock
        self._inflight: dict[Market, asyncio.Task[Backfilled]] = {}

    async def __call__(self, exchange: str, symbol: str, timeframe: str) -> Backfilled:
        key = (exchange, symbol, timeframe)
        task = self._inflight.get(key)
        if task is None:
            task = asyncio.ensure_future(self._fetch(exchange, symbol, timeframe))
            self._inflight[key] = task
            task.add_done_callback(lambda _t: self._inflight.pop(key, None))
        return await asyncio.shield(task)

    async def wait(self) -> None:
        """Let backfills in flight finish (at shutdown), whatever their outcome."""
        if self._inflight:
            await asyncio.gather(*self._inflight.values(), return_exceptions=True)

    async def _fetch(self, exchange: str, symbol: str, timeframe: str) -> Backfilled:
        from feeds.backfill import sync_candles
        from storage.candles import candle_range

        step = timeframe_to_ms(timeframe)
        now_ms = int(self.clock() * 1000)
        since = now_ms - now_ms % step - self.history_bars * step
        feed = await self.feeds.get(exchange)
        result = await sync_candles(feed, self.factory, symbol, timeframe, since_ms=since, now_ms=now_ms)
        with self.factory() as session:
            span = candle_range(session, exchange, symbol, timeframe, start_ms=since, end_ms=now_ms - step)
        bars = span[2] if span else 0
        log.info("backfilled %s %s %s: %d bars stored (%d new)", exchange, symbol, timeframe, bars, result.rows_added)
        return Backfilled(exchange, symbol, timeframe, bars, result.rows_added)
