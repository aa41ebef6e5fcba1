"""One cycle of the main job, and the state it carries between cycles.

A cycle, for one timeframe at time ``now``:

1. fetch the candles that closed since the last stored one, every symbol at once
   under the exchange's concurrency cap and rate limiter, and store them in one
   upsert (``bot.runtime.fetch``; a failing symbol is recorded and skipped);
2. fetch social volume (a failing source is logged and ignored);
3. take the recent history of every symbol from the in-memory ring of stored
   bars (``bot.runtime.candle_ring``, filled from the database at start) and
   score it with every enabled detector, all symbols in one batched model call
   per detector; alarms are judged on each symbol's recent scores carried from
   cycle to cycle (``bot.runtime.live_alarms``), as over the whole series;
4. store the events (only new ones come back), group them into alerts and
   queue one delivery per chat in the same transaction;
5. flush the outbox;
6. record the cycle as finished with ``until_ms = now``.

Restart safety follows from the order. Bars are scored from the last
*finished* cycle's ``until_ms`` onward, so bars a crashed cycle stored but
did not score are scored by the next one; events and alerts are unique per
bar, so bars scored twice are stored and alerted once; deliveries are sent
from the table, so queued but unsent alerts go out after the restart.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd
from sqlalchemy.orm import Session, sessionmaker

from bot.runtime.candle_ring import CandleRing
from bot.runtime.enrich import Enricher
from bot.runtime.events import events_from_alarms, queue_for_targets
from bot.runtime.faults import crash_point
from bot.runtime.fetch import CandleSync
from core.config import Config, WatchEntry
from core.timeframes import timeframe_to_ms
from storage.cycles import finish_cycle, open_cycle, scored_until
from storage.events import NewEvent, insert_events
from storage.models import Severity, utcnow

__all__ = ["CycleReport", "Runtime", "watched_entries"]

if TYPE_CHECKING:
    from bot.runtime.detector_pool import DetectorPool
    from feeds.pool import FeedPool

log = logging.getLogger(__name__)


@dataclass
class CycleReport:
    timeframe: str
    until_ms: int
    symbols: int = 0
    candles_added: int = 0
    events: list[NewEvent] = field(default_factory=list)
    new_events: int = 0
    alerts: int = 0
    errors: dict[str, str] = field(default_factory=dict)
    duration_s: float = 0.0
    stage_s: dict[str, float] = field(default_factory=dict)
    started_ms: int = 0  # wall clock at the start: started_ms - until_ms is how late the cycle ran
    fetched_at: float = 0.0  # time.monotonic() when the candles were in (alert latency is measured from here)

    @property
    def lag_s(self) -> float:
        """Seconds between the close of the newest bar and the start of the cycle that scores it."""
        return max(0.0, (self.started_ms - self.until_ms) / 1000)


def watched_entries(session: Session, cfg: Config, timeframe: str | None = None) -> list[WatchEntry]:
    """The enabled watchlist rows (of ``timeframe`` when given): the database is the source of truth.

    The config's ``[[watchlist]]`` and its groups only seed the table (``storage.watchlist.seed_watchlist``,
    called by ``bot.runtime.compose``), so a market removed in chat stays removed. Each entry carries
    its asset group and order-book depth as stored. Rows on an exchange the config no longer lists
    are skipped (and logged).
    """
    from storage.watchlist import enabled_markets, market_settings

    settings = market_settings(session)  # groups and book depths (seeded from the config, or set from chat/CLI)
    out = []
    for exchange, symbol, tf in enabled_markets(session, timeframe):
        if cfg.exchanges and exchange not in cfg.exchanges:
            log.warning("watchlist: %s %s on %r skipped: the config lists no such exchange", symbol, tf, exchange)
            continue
        group, depth = settings.get((exchange, symbol, tf), (None, None))
        out.append(WatchEntry(exchange=exchange, symbol=symbol, timeframe=tf, group=group, book_depth=depth))
    return sorted(out, key=lambda e: (e.exchange, e.symbol, e.timeframe))


class Runtime:
    """The main job's state: database, feeds, detectors, outbox."""

    def __init__(
        self,
        cfg: Config,
        factory: sessionmaker[Session],
        feeds: FeedPool,
        detectors: DetectorPool,
        *,
        dispatcher: Any = None,
        social: Sequence[Any] = (),
        alert_targets: Sequence[tuple[str, int]] = (),
        onchain: Sequence[Any] = (),
    ) -> None:
        self.cfg = cfg
        self.factory = factory
        self.feeds = feeds
        self.detectors = detectors
        self.dispatcher = dispatcher
        self.social = list(social)
        self.alert_targets = list(alert_targets)
        self._locks: dict[str, asyncio.Lock] = {}
        # The last history_bars of every market in memory, in step with the database.
        self.ring = CandleRing(cfg.scheduler.history_bars)
        self.candles = CandleSync(factory, feeds, self.ring)
        # Social data is fetched from where the last cycle stopped (the whole
        # history window on the first cycle of a process).
        self._social_until: dict[str, int] = {}
        # On-chain metrics, order-book features and group peers (bot/runtime/enrich.py).
        self.enricher = Enricher(cfg, factory, feeds, onchain)

    # -- stages ---------------------------------------------------------------------------

    async def _sync_candles(self, entries: Sequence[WatchEntry], now_ms: int, report: CycleReport) -> None:
        outcome = await self.candles.sync(entries, now_ms)
        report.candles_added += outcome.added
        report.errors.update(outcome.errors)
        report.stage_s["fetch:store"] = outcome.store_s

    def _record_feed_errors(self, entries: Sequence[WatchEntry], report: CycleReport) -> None:
        from storage.watchlist import record_checks

        markets = [(e.exchange, e.symbol, e.timeframe) for e in entries]
        errors = {m: report.errors[f"{m[0]}:{m[1]}"] for m in markets if f"{m[0]}:{m[1]}" in report.errors}
        with self.factory.begin() as session:
            record_checks(session, report.timeframe, markets, errors, utcnow())

    async def _sync_social(self, entries: Sequence[WatchEntry], now_ms: int, report: CycleReport) -> None:
        if not self.social:
            return
        from feeds.social import sync_social

        step = timeframe_to_ms(report.timeframe)
        window_start = now_ms - self.cfg.scheduler.history_bars * step
        symbols = sorted({e.symbol for e in entries})
        start = min(max(window_start, self._social_until.get(s, window_start)) for s in symbols) if symbols else now_ms
        try:
            results = await sync_social(self.social, self.factory, symbols, start, now_ms)
        except Exception as err:  # missing social data never stops market detection
            report.errors["social"] = f"{type(err).__name__}: {err}"
            log.warning("social sources failed: %s", err)
            return
        for (source, symbol), outcome in results.items():
            if isinstance(outcome, Exception):
                report.errors[f"social:{source}:{symbol}"] = str(outcome)
            else:
                self._social_until[symbol] = now_ms

    def _load_frames(self, entries: Sequence[WatchEntry], now_ms: int) -> dict[str, pd.DataFrame]:
        """The last ``history_bars`` bar slots closed by ``now_ms`` (+ social volume), per symbol.

        Candles come from the ring (the database is read only for markets it has not
        seen, or a window older than it holds); social volume in one query.
        """
        from feeds.social.align import social_per_bar

        frames: dict[str, pd.DataFrame] = {}
        bars = self.cfg.scheduler.history_bars
        groups = self.candles.frames(entries, now_ms)
        with self.factory() as session:
            for (exchange, timeframe), loaded in groups.items():
                step = timeframe_to_ms(timeframe)
                social = self._load_social(session, sorted(loaded), now_ms - bars * step, now_ms)
                for symbol, frame in loaded.items():
                    if symbol in social:
                        frame["social_volume"] = social_per_bar(
                            social[symbol], pd.DatetimeIndex(frame.index), timeframe
                        )
                    frames[f"{exchange}:{symbol}"] = frame
        return {f"{e.exchange}:{e.symbol}": frames[k] for e in entries if (k := f"{e.exchange}:{e.symbol}") in frames}

    def _load_social(self, session: Session, symbols: list[str], start_ms: int, end_ms: int) -> dict[str, pd.Series]:
        if not self.social or not symbols:
            return {}
        from storage.social import load_social_many

        return load_social_many(session, symbols, start_ms=start_ms, end_ms=end_ms)  # symbols with samples only

    def _scored_until(self, timeframe: str) -> int | None:
        with self.factory() as session:
            return scored_until(session, timeframe)

    def _score(
        self,
        frames: Mapping[str, pd.DataFrame],
        timeframe: str,
        scored_until: int | None,
        now_ms: int,
        report: CycleReport,
    ) -> list[NewEvent]:
        step = timeframe_to_ms(timeframe)
        # Bars to score: those that closed after the last finished cycle (open >= until - step).
        newest_open = now_ms - step
        first_open = newest_open if scored_until is None else max(scored_until - step + 1, 0)
        since = pd.Timestamp(first_open, unit="ms", tz="UTC")
        last_n = max(1, min(self.cfg.scheduler.history_bars, (newest_open - first_open) // step + 1))
        min_sev = Severity(self.cfg.alerts.min_severity)
        events: list[NewEvent] = []
        for name, detector, version in self.detectors.active():
            t0 = time.perf_counter()
            try:  # one batched model call; alarms judged on each symbol's carried recent scores
                fired_by_key = self.detectors.live_alarms(
                    name,
                    detector,
                    version,
                    frames,
                    timeframe=timeframe,
                    last_n=last_n,
                    since=since,
                    min_severity=min_sev,
                )
            except Exception as err:  # one failing detector must not kill the tick
                report.errors[f"detector:{name}"] = f"{type(err).__name__}: {err}"
                log.exception("detector %s failed", name)
                self.detectors.note_failure(name, err)  # /detectors and /status show it
                continue
            self.detectors.note_success(name)
            for key, fired in fired_by_key.items():
                exchange, _, symbol = key.partition(":")
                events += events_from_alarms(
                    fired,
                    exchange=exchange,
                    symbol=symbol,
                    timeframe=timeframe,
                    detector=name,
                    frame=frames[key],
                    since=since,
                    model_version=version,
                    kind=detector.event_kind,
                )
            report.stage_s[f"score:{name}"] = time.perf_counter() - t0
        return events

    # -- the cycle ------------------------------------------------------------------------

    async def run_cycle(self, timeframe: str, now_ms: int | None = None) -> CycleReport:
        """Fetch, score, store, alert for one timeframe. Never overlaps itself."""
        lock = self._locks.setdefault(timeframe, asyncio.Lock())
        async with lock:
            return await self._run_cycle(timeframe, now_ms)

    async def _run_cycle(self, timeframe: str, now_ms: int | None) -> CycleReport:
        step = timeframe_to_ms(timeframe)
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        now_ms -= now_ms % step  # the close of the newest closed bar
        report = CycleReport(timeframe=timeframe, until_ms=now_ms, started_ms=int(time.time() * 1000))
        t_start = time.perf_counter()
        with self.factory.begin() as session:
            cycle_id = open_cycle(session, timeframe)
            entries = watched_entries(session, self.cfg, timeframe)
        report.symbols = len(entries)

        t0 = time.perf_counter()
        await self._sync_candles(entries, now_ms, report)
        await self._sync_social(entries, now_ms, report)
        await self.enricher.sync(entries, timeframe, now_ms, report.errors)
        report.stage_s["fetch"] = time.perf_counter() - t0
        report.fetched_at = time.monotonic()
        crash_point("after_candles")

        t0 = time.perf_counter()
        frames = self.enricher.enrich(self._load_frames(entries, now_ms), entries, timeframe, now_ms)
        report.stage_s["load"] = time.perf_counter() - t0
        scored_until = self._scored_until(timeframe)
        t0 = time.perf_counter()
        await asyncio.to_thread(self.detectors.ensure_ready, frames)
        report.stage_s["train"] = time.perf_counter() - t0
        events = await asyncio.to_thread(self._score, frames, timeframe, scored_until, now_ms, report)
        report.events = events
        crash_point("after_scoring")

        t0 = time.perf_counter()
        with self.factory.begin() as session:
            new = insert_events(session, events)
            report.new_events = len(new)
            alerts = self._queue(session, new)
            report.alerts = len(alerts)
        report.stage_s["store"] = time.perf_counter() - t0
        crash_point("after_events")

        t0 = time.perf_counter()
        if self.dispatcher is not None:
            try:
                # texts now; the charts follow in the background (the next cycle need not wait for them)
                await self.dispatcher.flush(wait_charts=False)
            except Exception as err:  # delivery problems are retried from the outbox later
                report.errors["dispatch"] = f"{type(err).__name__}: {err}"
                log.exception("outbox flush failed")
        report.stage_s["dispatch"] = time.perf_counter() - t0

        t0 = time.perf_counter()  # bookkeeping for /status, after the alerts are out
        self._record_feed_errors(entries, report)
        report.stage_s["checks"] = time.perf_counter() - t0
        report.duration_s = time.perf_counter() - t_start
        with self.factory.begin() as session:
            finish_cycle(
                session,
                cycle_id,
                until_ms=now_ms,
                symbols=report.symbols,
                candles_added=report.candles_added,
                events=report.new_events,
                errors=[f"{k}: {v}" for k, v in report.errors.items()],
            )
        log.info(
            "cycle %s until %s: %d symbols, %d candles, %d new events, %d alerts, %d errors in %.2fs",
            timeframe,
            pd.Timestamp(now_ms, unit="ms", tz="UTC"),
            report.symbols,
            report.candles_added,
            report.new_events,
            report.alerts,
            len(report.errors),
            report.duration_s,
        )
        return report

    def _queue(self, session: Session, new: Sequence[Any]) -> list[Any]:
        return queue_for_targets(session, new, self.alert_targets, self.cfg.alerts.cooldown_minutes, utcnow())
