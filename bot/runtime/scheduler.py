"""``vigil run``: the scheduler that drives cycles, retraining and the bot, in one event loop.

APScheduler's ``AsyncIOScheduler`` runs on the same asyncio loop as the
python-telegram-bot ``Application`` (when a token is configured), the ccxt
async clients and the outbox. One job per timeframe fires a few seconds
after each candle close; ``max_instances=1`` means a slow cycle is never
overlapped by the next one, and ``coalesce=True`` turns a backlog of missed
runs into one (which then scores every bar it missed, see ``bot.runtime.cycle``).

The jobs follow the watchlist table while running: a chat ``/watch`` of a
new timeframe adds its job at once (the service tells us), a CLI change made
by another process is picked up within ``scheduler.watchlist_poll_seconds``,
and removing the last market of a timeframe removes its job. A market seen
for the first time is backfilled right away, so its chart and events work
before its first cycle.

SIGINT/SIGTERM stop the scheduler, let the cycle in flight finish, flush the
outbox and close the exchange clients.
"""

from __future__ import annotations

import asyncio
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

    def __init__(self, cfg: Config, *, model_root: str | Path | None = None) -> None:
        self.cfg = cfg
        self.model_root = Path(model_root) if model_root is not None else cfg.paths.models_path
        self.system: System | None = None
        self.runtime: Runtime | None = None
        self.application: Any = None
        self._stop = asyncio.Event()
        self._inflight: set[asyncio.Task[Any]] = set()
        self._background: set[asyncio.Task[Any]] = set()
        self.metrics: Any = None
        self.scheduler: Any = None
        self._markets: set[tuple[str, str, str]] | None = None  # what the jobs were last synced to
        self._follow_lock = asyncio.Lock()

    async def _build(self) -> Runtime:
        from bot.runtime.compose import compose
        from storage.db import open_database

        _engine, factory = open_database(self.cfg.database.url)
        self.system = await compose(self.cfg, factory, model_root=self.model_root)
        self.application = self.system.application
        self.runtime = self.system.runtime
        self.system.service.on_watchlist_change(self._watchlist_changed)
        return self.runtime

    def _watched(self) -> set[tuple[str, str, str]]:
        assert self.runtime is not None
        with self.runtime.factory() as session:
            return {(e.exchange, e.symbol, e.timeframe) for e in watched_entries(session, self.cfg)}

    def _timeframes(self) -> list[str]:
        return sorted({m[2] for m in self._watched()}, key=timeframe_to_ms)

    def _spawn(self, coro: Any, name: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _watchlist_changed(self) -> None:
        """The service changed the watchlist: follow it now rather than at the next poll."""
        self._spawn(self.follow_watchlist(), "follow-watchlist")

    async def follow_watchlist(self) -> None:
        """Add the cycle jobs of new timeframes, drop those of timeframes nobody watches, backfill new markets."""
        async with self._follow_lock:
            markets = await asyncio.to_thread(self._watched)
            previous, self._markets = self._markets, markets
            if self.scheduler is not None:
                self._sync_jobs(self.scheduler, {m[2] for m in markets})
            if previous is None:
                return  # what was watched at start is caught up by the first cycles
            for exchange, symbol, timeframe in sorted(markets - previous):
                self._spawn(self._backfill(exchange, symbol, timeframe), f"backfill-{symbol}-{timeframe}")

    async def _backfill(self, exchange: str, symbol: str, timeframe: str) -> None:
        assert self.system is not None
        try:
            await self.system.backfiller(exchange, symbol, timeframe)
        except Exception as err:  # the market's first cycle fetches it again
            log.warning("history for %s %s on %s could not be fetched now: %s", symbol, timeframe, exchange, err)

    def _add_cycle_job(self, scheduler: Any, timeframe: str) -> None:
        now = datetime.now(UTC)
        delay = self.cfg.scheduler.close_delay_seconds
        first = next_run_time(now, timeframe, delay)
        scheduler.add_job(
            self._cycle,
            "interval",
            args=[timeframe],
            seconds=timeframe_to_ms(timeframe) / 1000,
            next_run_time=first,
            id=f"cycle:{timeframe}",
            name=f"cycle {timeframe}",
            **self._job_options(),
        )
        log.info("cycle %s scheduled, first run at %s", timeframe, first.isoformat())

    def _sync_jobs(self, scheduler: Any, timeframes: set[str]) -> None:
        scheduled = {job.id.partition(":")[2] for job in scheduler.get_jobs() if job.id.startswith("cycle:")}
        for timeframe in sorted(timeframes - scheduled, key=timeframe_to_ms):
            self._add_cycle_job(scheduler, timeframe)
        for timeframe in sorted(scheduled - timeframes, key=timeframe_to_ms):
            scheduler.remove_job(f"cycle:{timeframe}")
            log.info("cycle %s unscheduled: nothing on the watchlist uses that timeframe any more", timeframe)

    def _job_options(self) -> Mapping[str, Any]:
        return {
            "max_instances": 1,
            "coalesce": True,
            "misfire_grace_time": self.cfg.scheduler.misfire_grace_seconds,
        }

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
        self.scheduler = scheduler
        self._markets = self._watched()
        if not self._markets:
            log.warning("the watchlist is empty: /watch in chat or vigil watch adds markets (no restart needed)")
        for tf in sorted({m[2] for m in self._markets}, key=timeframe_to_ms):
            self._add_cycle_job(scheduler, tf)
        scheduler.add_job(
            self._retrain,
            "interval",
            hours=self.cfg.scheduler.retrain_interval_hours,
            id="retrain",
            name="retrain",
            **self._job_options(),
        )
        scheduler.add_job(
            self.follow_watchlist,
            "interval",
            seconds=self.cfg.scheduler.watchlist_poll_seconds,
            id="watchlist",
            name="follow the watchlist",
            **self._job_options(),
        )

    def _skipped(self, event: Any) -> None:
        """A run was due while the previous cycle still ran (coalesced: the next one catches up)."""
        if str(event.job_id).startswith("cycle:"):
            timeframe = str(event.job_id).split(":", 1)[1]
            log.warning("cycle %s overran its timeframe; the next run catches up", timeframe)
            if self.metrics is not None:
                self.metrics.skipped(timeframe)

    def _log_serving(self) -> None:
        """Which detectors ONNX Runtime serves, and whether TensorFlow had to be loaded (memory, start-up)."""
        import sys

        assert self.runtime is not None
        served: dict[str, list[str]] = {}
        for name, detector, _version in self.runtime.detectors.active():
            served.setdefault(str(getattr(detector, "served_by", "numpy")), []).append(name)
        parts = [f"served by {how}: {', '.join(sorted(names))}" for how, names in sorted(served.items())]
        loaded = "tensorflow" in sys.modules
        log.info("ready; %s; TensorFlow loaded: %s", "; ".join(parts) or "no detectors yet", loaded)

    def request_stop(self) -> None:
        self._stop.set()

    async def run(self, *, catch_up: bool = True) -> None:
        """Run until SIGINT/SIGTERM (or ``request_stop``).

        Nothing waits for Telegram: the bot connects in the background
        (``bot.telegram.link``) while the cycles run. Whatever was opened is
        closed on the way out, also when start-up failed half-way.
        """
        from apscheduler.events import EVENT_JOB_MAX_INSTANCES
        from apscheduler.schedulers.asyncio import AsyncIOScheduler

        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, self.request_stop)
            except (NotImplementedError, RuntimeError):  # not the main thread, or Windows
                pass
        scheduler: Any = None
        try:
            await self._build()
            self._close_abandoned_cycles()
            assert self.system is not None
            if self.system.link is not None:
                self.system.link.start()
            scheduler = AsyncIOScheduler(event_loop=loop, timezone=UTC)
            self._schedule(scheduler)
            scheduler.add_listener(self._skipped, EVENT_JOB_MAX_INSTANCES)
            scheduler.start()
            if self.system.stream is not None:  # pump alerts in seconds, beside the cycles; nothing waits for it
                self._spawn(self._start_stream(), "streams")
            if self.cfg.metrics.prometheus_port:
                from bot.runtime.metrics import start_metrics

                self.metrics = start_metrics(self.cfg.metrics.prometheus_port)
            if catch_up:  # score what closed while we were down, right away; timeframes do not wait for each other
                await asyncio.gather(*(self._cycle(tf) for tf in self._timeframes()))
            self._log_serving()
            if self.runtime is not None and self.runtime.dispatcher is not None:
                self.runtime.dispatcher.charts.warm()  # chart workers start now, not with the first alert
            await self._stop.wait()
            log.info("stopping: finishing the cycle in flight")
        finally:
            await self._shutdown(scheduler)

    async def _shutdown(self, scheduler: Any) -> None:
        if scheduler is not None and scheduler.running:
            scheduler.shutdown(wait=False)
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, *self._inflight, return_exceptions=True)
        try:
            if self.runtime is not None and self.runtime.dispatcher is not None:
                await self.runtime.dispatcher.flush()
        except Exception:  # what could not be sent stays queued for the next start
            log.exception("flushing the outbox at shutdown failed")
        finally:
            if self.system is not None:
                await self.system.aclose()
            if self.metrics is not None:
                self.metrics.shutdown()
            log.info("stopped")

    async def _start_stream(self) -> None:
        """Start the trade-stream job; if the exchange cannot be reached, the candle cycles go on without it."""
        assert self.system is not None and self.system.stream is not None
        try:
            await self.system.stream.start()
        except Exception:  # noqa: BLE001 - logged; streams are an addition to the cycles, not a condition
            log.exception("trade streams could not start; candle cycles go on without them")
            self.system.stream = None

    def _close_abandoned_cycles(self) -> None:
        """Cycles a killed process left unfinished are recorded as abandoned (their bars are scored again)."""
        from storage.cycles import close_abandoned

        assert self.runtime is not None
        with self.runtime.factory.begin() as session:
            n = close_abandoned(session)
        if n:
            log.warning("%d cycle(s) left unfinished by a previous run marked abandoned; their bars are redone", n)
