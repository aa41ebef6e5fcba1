"""Pump alerts in seconds: score the trade-stream chunks of every streamed symbol at each chunk close.

The candle cycle sees a pump only after its bar closed and was fetched, usually after the
peak. This job runs beside it in the same event loop:

1. :class:`~feeds.trade_stream.TradeStream` hands over every trade, complete and in id order;
   they go into a :class:`~detectors.pump.live_chunks.ChunkBook` (a few array appends);
2. ``settle_seconds`` after each chunk end, every symbol whose trades are known complete (the
   stream's watermark passed the end: every busy symbol) has its chunk closed and scored in **one**
   batched model call (in a worker thread, so the loop keeps reading the sockets); the quiet rest,
   once REST has confirmed they missed nothing, in **one** more call;
3. alarms come from :func:`detectors.alarms.detector_alarms` (the rule every path shares) under
   the chat/CLI threshold overrides; one event per symbol and pump: an alarm while the symbol's
   episode is open (an alarm in the last ``episode_gap_chunks`` chunks) adds nothing;
4. chunks (counts and score), events and the queued deliveries are written in one transaction
   (``storage.streams``, ``storage.events``, ``storage.outbox``), then the outbox is flushed: the
   same path as candle alerts, with a chart of the last minutes of price and rush orders
   (``bot.alerts.stream_chart``) and a line saying how many seconds after the first abnormal
   chunk closed the alert was sent;
5. a symbol still silent ``verify_after_seconds`` after a chunk end is checked over REST (its
   last message may have been lost), so no chunk is ever scored with trades missing.

Chunks and raw trades older than their retention are pruned every few minutes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy.orm import Session, sessionmaker

from bot.runtime.events import queue_for_targets
from core.config import Config
from detectors.alarms import detector_alarms
from detectors.pump.live_chunks import ChunkBook, ClosedChunks
from feeds.clock import MarketClock, WallClock
from feeds.trade_sequence import TradeBatch
from storage.events import NewEvent, insert_events
from storage.models import Severity, utcnow

__all__ = ["ChunkRound", "StreamJob", "load_chunk_model"]

log = logging.getLogger(__name__)

_PRUNE_EVERY_MS = 5 * 60_000
_OVERRIDES_EVERY_S = 30.0
_CHANGE_CHUNKS = 4  # the price change an alert reports: over the last 4 chunks (a minute at 15 s)
_STRAGGLER_WAIT_S = 5.0  # wall seconds the second call waits for the last REST confirmations


def load_chunk_model(cfg: Config) -> Any:
    """The chunk-grain pump model: ``streams.model_dir`` or the shipped one, at the configured alert budget."""
    from core.errors import ConfigError
    from detectors.pump.detector import PumpDumpDetector

    if cfg.streams.model_dir:
        det = PumpDumpDetector.load(cfg.streams.model_dir)
        if det.extra_.get("budget"):
            det.apply_budget(cfg.streams.alert_budget)
    else:
        det = PumpDumpDetector.pretrained("chunks", alert_budget=cfg.streams.alert_budget)
        if det is None:
            raise ConfigError("streams: no chunk model ships with this installation; set streams.model_dir")
    if det.grain_ != "chunks":
        raise ConfigError(f"streams.model_dir: {cfg.streams.model_dir} holds a {det.grain_!r} model, not a chunk model")
    return det


@dataclass
class ChunkRound:
    """One scoring pass: the chunks closed together and what came of them."""

    chunk_end_ms: int
    rows: int
    symbols: int
    alarms: int = 0
    events: list[NewEvent] = field(default_factory=list)
    alerts: int = 0
    score_s: float = 0.0
    total_s: float = 0.0


class StreamJob:
    """The real-time pump scoring job for ``symbols`` streamed from ``exchange``.

    Parameters
    ----------
    cfg : the config (``[streams]``, alert cooldown and severity floor).
    factory : database sessions.
    detector : a chunk-grain :class:`~detectors.pump.detector.PumpDumpDetector` (``load_chunk_model``).
    symbols, exchange, ccxt_config : what to stream, from where.
    clock : the market clock (:class:`~feeds.clock.WallClock` live, a replay clock in the demo).
    dispatcher, alert_targets : the outbox sender and (channel, chat) targets, as the candle cycle has them.
    on_round : called with every :class:`ChunkRound` (benchmarks, the demo's progress).
    """

    def __init__(
        self,
        cfg: Config,
        factory: sessionmaker[Session],
        detector: Any,
        *,
        symbols: Sequence[str],
        exchange: str,
        ccxt_config: dict[str, Any] | None = None,
        clock: MarketClock | None = None,
        dispatcher: Any = None,
        alert_targets: Sequence[tuple[str, int]] = (),
        model_version: str = "pretrained",
        on_round: Callable[[ChunkRound], None] | None = None,
        tick: float = 0.05,
    ) -> None:
        self.cfg = cfg
        self.scfg = cfg.streams
        self.factory = factory
        self.detector = detector
        self.symbols = list(dict.fromkeys(symbols))
        self.exchange = exchange
        self.ccxt_config = dict(ccxt_config or {})
        self.clock: MarketClock = clock or WallClock()
        self.dispatcher = dispatcher
        self.alert_targets = list(alert_targets)
        self.model_version = model_version
        self.on_round = on_round
        self.tick = tick
        self.chunk_ms = self.scfg.chunk_seconds * 1000
        stream_meta = detector.extra_.get("stream", {})
        self.window = int(stream_meta.get("window", 20))
        trained_ms = int(stream_meta.get("chunk_ms", self.chunk_ms))
        if trained_ms != self.chunk_ms:
            log.warning(
                "streams: the chunk model was trained on %d s chunks, scoring %d s chunks",
                trained_ms // 1000,
                self.chunk_ms // 1000,
            )
        self.steps = int(detector.lookback)
        self.book = ChunkBook(self.chunk_ms, self.window, history=max(self.steps, 2 * self.window), steps=self.steps)
        self.stream: Any = None
        self.rounds: list[ChunkRound] = []  # the most recent rounds (bounded)
        self.events: list[NewEvent] = []  # every event this job raised (bounded)
        self._episode_last: dict[str, int] = {}  # symbol -> start of its last alarmed chunk
        self._raw: list[TradeBatch] = []
        self._verifying: dict[str, asyncio.Task[Any]] = {}
        self._task: asyncio.Task[Any] | None = None
        self._flushing: asyncio.Task[Any] | None = None
        self._flush_again = False
        self._overrides: list[Any] = []
        self._overrides_at = 0.0
        self._last_prune = 0
        self._round_due = -1  # the chunk boundary of the last fast-lane round
        self._round_wall = 0.0
        self._waiting: set[str] = set()  # symbols not yet scored up to _round_due
        self.started_ms = 0
        self.errors = 0

    # -- lifecycle ----------------------------------------------------------------------
    async def start(self) -> StreamJob:
        """Open the stream (with ``window`` chunks of history over REST, so features are warm at once) and run."""
        from feeds.trade_stream import TradeStream

        now = self.clock.now_ms()
        self.started_ms = now
        current = now - now % self.chunk_ms
        self.stream = TradeStream(
            self.exchange,
            self.symbols,
            self._on_trades,
            ccxt_config=self.ccxt_config,
            now_ms=self.clock.now_ms,
            start_ms=current - self.window * self.chunk_ms,
            group_size=self.scfg.group_size,
        )
        await self.stream.start()
        self._task = asyncio.create_task(self._run(), name="stream-job")
        log.info(
            "streams: scoring %d symbols every %d s (threshold %.4f)",
            len(self.symbols),
            self.scfg.chunk_seconds,
            float(self.detector.threshold_),
        )
        return self

    async def stop(self) -> None:
        tasks = [t for t in [self._task, *self._verifying.values()] if t is not None]
        if self._task is not None:
            self._task.cancel()
        await self.drain()  # alerts already queued go out before the stream closes
        self._task, self._verifying = None, {}
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self.stream is not None:
            await self.stream.stop()

    # -- trades in ----------------------------------------------------------------------
    def _on_trades(self, batch: TradeBatch) -> None:
        self.book.add_trades(batch.symbol, batch.timestamp, batch.price, batch.amount, batch.is_buy)
        if self.scfg.keep_raw_minutes:
            self._raw.append(batch)

    # -- the loop -----------------------------------------------------------------------
    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.tick)
            try:
                await self.step()
            except asyncio.CancelledError:
                raise
            except Exception:  # one bad round must not end the stream; it is logged and counted
                self.errors += 1
                log.exception("streams: a scoring round failed")

    def due_until(self) -> int:
        """Chunks ending at or before this are due (``settle_seconds`` after their end)."""
        now = self.clock.now_ms() - int(self.scfg.settle_seconds * 1000)
        return now - now % self.chunk_ms

    async def step(self) -> ChunkRound | None:
        """One tick: at a chunk close score every symbol known complete (one batched call); score the
        rest together (one more call) once REST has confirmed them all, or after ``_STRAGGLER_WAIT``.

        A symbol is known complete when it traded after the chunk end with no hole before (a busy
        symbol, and a pump makes its symbol busy, is ready within milliseconds), or when REST has
        confirmed nothing is missing (``_verify_silent``, for the quiet ones).
        """
        due = self.due_until()
        result = None
        if due > self._round_due:  # a chunk just closed: the fast lane
            self._round_due = due
            self._round_wall = time.monotonic()
            result = await self._close({s: min(self.stream.complete_until(s), due) for s in self.symbols})
            self._waiting = {s for s in self.symbols if (n := self.book.next_chunk_ms(s)) is not None and n < due}
        elif self._waiting:
            ready = {s for s in self._waiting if self.stream.complete_until(s) >= due}
            if len(ready) == len(self._waiting) or time.monotonic() - self._round_wall > _STRAGGLER_WAIT_S:
                result = await self._close({s: min(self.stream.complete_until(s), due) for s in ready})
                self._waiting -= ready
        self._verify_silent(due)
        if due - self._last_prune >= _PRUNE_EVERY_MS:
            self._last_prune = due
            await asyncio.to_thread(self._prune, due)
        return result

    async def _close(self, limits: dict[str, int]) -> ChunkRound | None:
        closed = self.book.close_until(limits, list(limits))
        return await self._handle(closed) if len(closed) else None

    def _verify_silent(self, due: int) -> None:
        now = self.clock.now_ms()
        wait = int(self.scfg.verify_after_seconds * 1000)
        for symbol in self.symbols:
            nxt = self.book.next_chunk_ms(symbol)
            if nxt is None or symbol in self._verifying:
                continue
            end = nxt + self.chunk_ms
            if end <= due and now >= end + wait and self.stream.complete_until(symbol) < end:
                self._verifying[symbol] = asyncio.create_task(self._verify(symbol), name=f"verify:{symbol}")

    async def _verify(self, symbol: str) -> None:
        try:
            await self.stream.verify(symbol)
        except asyncio.CancelledError:
            raise
        except Exception as err:  # noqa: BLE001 - retried at the next tick
            log.warning("streams: checking %s over REST failed: %s", symbol, err)
            await asyncio.sleep(1.0)
        finally:
            self._verifying.pop(symbol, None)

    # -- scoring ------------------------------------------------------------------------
    async def _handle(self, closed: ClosedChunks) -> ChunkRound:
        t0 = time.perf_counter()
        end = int(closed.start_ms.max()) + self.chunk_ms
        report = ChunkRound(chunk_end_ms=end, rows=len(closed), symbols=len(set(closed.symbols)))
        scores = await asyncio.to_thread(self.detector.score_chunk_windows, closed.windows)
        report.score_s = time.perf_counter() - t0
        warm = closed.closed > self.window  # the rolling window is full of streamed chunks
        values = np.where(warm, scores, np.nan)
        await self._refresh_overrides()
        fired = self._alarms(closed, values)
        report.alarms = len(fired)
        events = self._episodes(closed, fired)
        raw, self._raw = self._raw, []
        report.events = events
        report.alerts = await asyncio.to_thread(self._store, closed, values, events, raw)
        if report.alerts and self.dispatcher is not None:
            self._flush_soon()
        report.total_s = time.perf_counter() - t0
        self.rounds = [*self.rounds[-1999:], report]
        self.events = [*self.events[-999:], *events]
        if self.on_round is not None:
            self.on_round(report)
        return report

    def _flush_soon(self) -> None:
        """Send the queued alerts in a task of their own, so rendering charts never holds up the next chunk.

        One flush at a time; a request while one runs makes it go round once more (rows queued
        after its last look are not left waiting for the next alert).
        """
        if self._flushing is not None and not self._flushing.done():
            self._flush_again = True
            return

        async def flush() -> None:
            while True:
                self._flush_again = False
                try:
                    await self.dispatcher.flush()
                except Exception:  # noqa: BLE001 - delivery problems are retried from the outbox later
                    log.exception("streams: outbox flush failed")
                if not self._flush_again:
                    return

        self._flushing = asyncio.create_task(flush(), name="stream-flush")

    async def drain(self) -> None:
        """Wait for the alerts being sent (tests, the demo and shutdown)."""
        while self._flushing is not None and not self._flushing.done():
            await asyncio.shield(self._flushing)

    async def _refresh_overrides(self) -> None:
        if time.monotonic() - self._overrides_at < _OVERRIDES_EVERY_S:
            return
        from storage.thresholds import list_overrides

        def read() -> list[Any]:
            with self.factory() as session:
                return list_overrides(session)

        self._overrides = await asyncio.to_thread(read)
        self._overrides_at = time.monotonic()

    def _alarms(self, closed: ClosedChunks, values: np.ndarray) -> list[tuple[int, float, float, str]]:
        """(row, score, threshold, severity) of every closed row that fires, under each symbol's override."""
        from storage.thresholds import resolve_override

        name = self.detector.name
        groups: dict[float | None, list[int]] = {}
        for i, symbol in enumerate(closed.symbols):
            resolved = resolve_override(self._overrides, symbol, name)
            if resolved.enabled:
                groups.setdefault(resolved.threshold, []).append(i)
        min_sev = Severity(self.cfg.alerts.min_severity)
        out = []
        for threshold, rows in groups.items():
            series = pd.Series(values[rows], index=pd.RangeIndex(len(rows)))
            hits = detector_alarms(self.detector, series, threshold=threshold, min_severity=min_sev)
            for pos, row in hits.iterrows():  # alarms are rare: a loop over hits, not rows
                out.append((rows[int(pos)], float(row["score"]), float(row["threshold"]), str(row["severity"])))
        return sorted(out)

    def _episodes(self, closed: ClosedChunks, fired: list[tuple[int, float, float, str]]) -> list[NewEvent]:
        """One event per symbol and pump: the first alarmed chunk of an episode (alarms < gap chunks apart)."""
        gap_ms = self.scfg.episode_gap_chunks * self.chunk_ms
        events = []
        for i, score, threshold, severity in fired:
            symbol, start = closed.symbols[i], int(closed.start_ms[i])
            last = self._episode_last.get(symbol)
            self._episode_last[symbol] = start if last is None else max(last, start)
            if last is not None and start - last <= gap_ms:
                continue
            if start + self.chunk_ms < self.started_ms:  # history fetched at start-up: not news any more
                continue
            events.append(self._event(closed, i, score, threshold, severity))
        return events

    def _event(self, closed: ClosedChunks, i: int, score: float, threshold: float, severity: str) -> NewEvent:
        symbol, start = closed.symbols[i], int(closed.start_ms[i])
        rush, trades, _, price, _ = closed.counts[i].tolist()
        past = self.book.recent_counts(symbol, self.window)  # ends with the newest closed chunk
        before = past[:-1]
        back = past[-1 - _CHANGE_CHUNKS, 3] if len(past) > _CHANGE_CHUNKS else past[0, 3]
        usual_rush = float(before[:, 0].mean()) if len(before) else float("nan")
        usual_orders = float(before[:, 1].mean()) if len(before) else float("nan")
        close_ms = start + self.chunk_ms
        details = {
            "grain": "trades",
            "chunk_s": self.scfg.chunk_seconds,
            "first_abnormal_close_ms": close_ms,
            "first_abnormal_close_wall_ms": float(self.clock.wall_epoch_ms(close_ms)),
            "price": price,
            "price_change": price / back - 1.0 if back else None,
            "change_seconds": _CHANGE_CHUNKS * self.scfg.chunk_seconds,
            "rush_orders": int(rush),
            "rush_multiple": rush / max(usual_rush, 1.0) if np.isfinite(usual_rush) else None,
            "orders": int(trades),
            "orders_multiple": trades / max(usual_orders, 1.0) if np.isfinite(usual_orders) else None,
        }
        return NewEvent(
            exchange=self.exchange,
            symbol=symbol,
            timeframe=f"{self.scfg.chunk_seconds}s",
            detector=self.detector.name,
            bar_ts=start,
            score=score,
            threshold=threshold,
            severity=severity,
            kind=self.detector.event_kind,
            details=details,
            model_version=self.model_version,
        )

    # -- storage --------------------------------------------------------------------------
    def _store(self, closed: ClosedChunks, values: np.ndarray, events: list[NewEvent], raw: list[TradeBatch]) -> int:
        from storage.streams import store_chunks, store_stream_trades

        with self.factory.begin() as session:
            store_chunks(
                session, self.exchange, self.scfg.chunk_seconds, closed.symbols, closed.start_ms, closed.counts, values
            )
            for batch in raw:
                store_stream_trades(
                    session,
                    self.exchange,
                    batch.symbol,
                    batch.ids,
                    batch.timestamp,
                    batch.price,
                    batch.amount,
                    batch.is_buy,
                )
            new = insert_events(session, events)
            queued = queue_for_targets(session, new, self.alert_targets, self.cfg.alerts.cooldown_minutes, utcnow())
            return len(queued)

    def _prune(self, now_ms: int) -> None:
        from storage.streams import prune_stream_data

        keep_raw = self.scfg.keep_raw_minutes * 60_000
        with self.factory.begin() as session:
            prune_stream_data(
                session,
                chunks_before_ms=now_ms - int(self.scfg.keep_chunks_days * 86_400_000),
                trades_before_ms=now_ms - keep_raw if keep_raw else None,
            )
