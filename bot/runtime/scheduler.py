"""``vigil run``: the scheduler that drives cycles, retraining and the bot, in one event loop.

APScheduler's ``AsyncIOScheduler`` runs on the same asyncio loop as the
python-telegram-bot ``Application`` (when a token is configured), the ccxt
async clients and the outbox. One job per timeframe fires a few seconds
after each candle close; ``max_instances=1`` means a slow cycle is never
overlapped by the next one, and ``coalesce=True`` turns a backlog of missed
runs into one (which then scores every bar it missed, see ``bot.runtime.cycle``).

SIGINT/SIGTERM stop the scheduler, let the cycle in flight finish, flush the
outbox and close the exchange clients.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.runtime.cycle import Runtime, watched_entries

if TYPE_CHECKING:
    from bot.runtime.compose import System
from core.config import Config
from core.timeframes import timeframe_to_ms

__all__ = ["MainJob", "next_run_time"]

log = logging.getLogger(__name__)


def next_run_time(now: datetime, timeframe: str, delay_s: float) -> datetime:
    """The first candle close of ``timeframe`` after ``now``, plus ``delay_s``."""
    step = timeframe_to_ms(timeframe)
    now_ms = int(now.timestamp() * 1000)
    close_ms = now_ms - now_ms % step + step
    return datetime.fromtimestamp(close_ms / 1000, UTC) + timedelta(seconds=delay_s)


class MainJob:
    """Builds the runtime from config (``bot.runtime.compose``) and keeps it running until told to stop."""

    def __init__(self, cfg: Config, *, model_root: str | Path = "models") -> None:
        self.cfg = cfg
        self.model_root = Path(model_root)
        self.system: System | None = None
        self.runtime: Runtime | None = None
        self.application: Any = None
        self._stop = asyncio.Event()
        self._inflight: set[asyncio.Task[Any]] = set()
        self.metrics: Any = None

    async def _build(self) -> Runtime:
        from bot.runtime.compose import compose
        from storage.db import open_database

        _engine, factory = open_database(self.cfg.database.url)
        self.system = await compose(self.cfg, factory, model_root=self.model_root)
        self.application = self.system.application
        self.runtime = self.system.runtime
        return self.runtime

    def _timeframes(self) -> list[str]:
        assert self.runtime is not None
        with self.runtime.factory() as session:
            return sorted({e.timeframe for e in watched_entries(session, self.cfg)}, key=timeframe_to_ms)

    async def _cycle(self, timeframe: str) -> None:
        assert self.runtime is not None
        task = asyncio.current_task()
        if task is not None:
            self._inflight.add(task)
        try:
            report = await self.runtime.run_cycle(timeframe)
            if self.metrics is not None:
                self.metrics.observe_cycle(report)
        except Exception:
            log.exception("cycle %s failed; the next one will retry", timeframe)
        finally:
            if task is not None:
                self._inflight.discard(task)

    async def _retrain(self) -> None:
        assert self.runtime is not None
        runtime = self.runtime
        for timeframe in self._timeframes():
            with runtime.factory() as session:
                entries = watched_entries(session, self.cfg, timeframe)
            frames = runtime._load_frames(entries, int(datetime.now(UTC).timestamp() * 1000))
            done = await asyncio.to_thread(runtime.detectors.retrain, frames)
            log.info("retrained %s on %s", ", ".join(done) or "nothing", timeframe)

    def _schedule(self, scheduler: Any) -> None:
        now = datetime.now(UTC)
        delay = self.cfg.scheduler.close_delay_seconds
        kwargs: Mapping[str, Any] = {
            "max_instances": 1,
            "coalesce": True,
            "misfire_grace_time": self.cfg.scheduler.misfire_grace_seconds,
        }
        for tf in self._timeframes():
            scheduler.add_job(
                self._cycle,
                "interval",
                args=[tf],
                seconds=timeframe_to_ms(tf) / 1000,
                next_run_time=next_run_time(now, tf, delay),
                id=f"cycle:{tf}",
                name=f"cycle {tf}",
                **kwargs,
            )
            log.info("cycle %s scheduled, first run at %s", tf, next_run_time(now, tf, delay).isoformat())
        scheduler.add_job(
            self._retrain,
            "interval",
            hours=self.cfg.scheduler.retrain_interval_hours,
            id="retrain",
            name="retrain",
            **kwargs,
        )

    def request_stop(self) -> None:
        self._stop.set()

    async def run(self, *, catch_up: bool = True) -> None:
        """Run until SIGINT/SIGTERM (or ``request_stop``)."""
        from apscheduler.schedulers.asyncio import AsyncIOScheduler

        runtime = await self._build()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, self.request_stop)
            except (NotImplementedError, RuntimeError):  # not the main thread, or Windows
                pass
        stack = contextlib.AsyncExitStack()
        if self.application is not None:
            from bot.telegram.application import running_application

            await stack.enter_async_context(running_application(self.application))
        scheduler = AsyncIOScheduler(event_loop=loop, timezone=UTC)
        self._schedule(scheduler)
        scheduler.start()
        if self.cfg.metrics.prometheus_port:
            from bot.runtime.metrics import start_metrics

            self.metrics = start_metrics(self.cfg.metrics.prometheus_port)
        try:
            if catch_up:  # score what closed while we were down, right away
                for tf in self._timeframes():
                    await self._cycle(tf)
            await self._stop.wait()
            log.info("stopping: finishing the cycle in flight")
        finally:
            scheduler.shutdown(wait=False)
            if self._inflight:
                await asyncio.gather(*self._inflight, return_exceptions=True)
            if runtime.dispatcher is not None:
                await runtime.dispatcher.flush()
            await stack.aclose()
            if self.system is not None:
                await self.system.aclose()
            if self.metrics is not None:
                self.metrics.shutdown()
            log.info("stopped")
