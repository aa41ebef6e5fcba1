"""A cycle's candles: fetch every symbol at once, store them in one upsert, keep the ring in step.

Per cycle and (exchange, timeframe):

1. the ring (:class:`~bot.runtime.candle_ring.CandleRing`) says where each symbol's stored
   bars end; symbols it has not seen yet are read from the database first, in one query,
   and bars stored while still open (by an import or an older version) are deleted;
2. the missing bars are taken from the exchange's kline WebSocket stream where the config
   asks for one (``candles = "websocket"``, :mod:`feeds.kline_stream`), and whatever the
   stream does not hold is requested over REST: all symbols concurrently under the
   exchange's cap (``max_concurrency``) and its rate limiter (ccxt's, which charges each
   endpoint its weight); the first cycle of a process for a symbol also re-requests the
   holes inside the history window, later cycles only what closed since the newest bar;
3. everything fetched is written in one transaction (one ``executemany`` per exchange),
   and only after the commit into the ring.

One symbol failing never stops the others: its error is reported under
``exchange:symbol`` and its bars stay as they were.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sqlalchemy.orm import Session, sessionmaker

from bot.runtime.candle_ring import CandleRing
from core.config import WatchEntry
from core.timeframes import timeframe_to_ms
from storage.candles import delete_candles_from, load_candles_many, upsert_candles_many

if TYPE_CHECKING:
    from feeds.kline_stream import KlineStream
    from feeds.pool import FeedPool

__all__ = ["CandleSync", "FetchOutcome", "missing_ranges"]

log = logging.getLogger(__name__)


def missing_ranges(present: np.ndarray, start_ms: int, end_ms: int, step: int) -> list[tuple[int, int]]:
    """``[since, until)`` ranges of the bar opens in ``[start_ms, end_ms)`` not in sorted ``present``."""
    grid = np.arange(start_ms, end_ms, step, dtype=np.int64)
    missing = grid[~np.isin(grid, present)]
    if not len(missing):
        return []
    breaks = np.flatnonzero(np.diff(missing) != step)
    firsts = np.r_[missing[0], missing[breaks + 1]]
    lasts = np.r_[missing[breaks], missing[-1]]
    return [(int(a), int(b) + step) for a, b in zip(firsts, lasts, strict=True)]


@dataclass
class FetchOutcome:
    """What the fetch stage did: new bars per market key and errors per ``exchange:symbol``."""

    added: int = 0
    requests: int = 0
    errors: dict[str, str] = field(default_factory=dict)
    store_s: float = 0.0  # of which: the one upsert of everything fetched


class CandleSync:
    """The cycle's fetch-and-store stage, and the frames it serves from the ring."""

    def __init__(self, factory: sessionmaker[Session], feeds: FeedPool, ring: CandleRing) -> None:
        self.factory = factory
        self.feeds = feeds
        self.ring = ring
        self._caps: dict[str, asyncio.Semaphore] = {}
        # Holes inside the window are re-requested once per process and symbol: a hole the
        # exchange itself has would otherwise cost a request every cycle.
        self._gaps_checked: set[tuple[str, str, str]] = set()
        self._validated: dict[tuple[str, str], str] = {}

    # -- the ring ----------------------------------------------------------------------------
    def _fill(self, session: Session, exchange: str, timeframe: str, symbols: Sequence[str], now_ms: int) -> None:
        """Read the window of symbols the ring has not seen; drop stored bars that were still open."""
        step = timeframe_to_ms(timeframe)
        start = now_ms - self.ring.bars * step
        if not self.ring.covers(exchange, timeframe, start):  # asked for an older window: rebuild
            self.ring.forget(exchange, timeframe)
        todo = sorted(set(symbols) - self.ring.known(exchange, timeframe))
        if not todo:
            return
        removed = delete_candles_from(session, exchange, timeframe, todo, now_ms - step + 1)
        if removed:
            log.warning("%s %s: deleted %d stored bars that were still open", exchange, timeframe, removed)
        loaded = load_candles_many(session, exchange, timeframe, todo, start_ms=start, end_ms=now_ms - step + 1)
        self.ring.write(exchange, timeframe, step, loaded)
        self.ring.mark_known(exchange, timeframe, step, todo)

    def frames(self, entries: Sequence[WatchEntry], now_ms: int) -> dict[tuple[str, str], dict[str, pd.DataFrame]]:
        """Per (exchange, timeframe): the window closed by ``now_ms`` of each symbol that has bars."""
        out: dict[tuple[str, str], dict[str, pd.DataFrame]] = {}
        for (exchange, timeframe), symbols in _by_group(entries).items():
            step = timeframe_to_ms(timeframe)
            start, end = now_ms - self.ring.bars * step, now_ms - step + 1
            with self.factory.begin() as session:
                self._fill(session, exchange, timeframe, symbols, now_ms)
            out[(exchange, timeframe)] = self.ring.frames(exchange, timeframe, symbols, start_ms=start, end_ms=end)
        return out

    # -- fetching ----------------------------------------------------------------------------
    async def sync(self, entries: Sequence[WatchEntry], now_ms: int) -> FetchOutcome:
        """Fetch and store the bars each symbol is missing up to the close ``now_ms``."""
        outcome = FetchOutcome()
        groups = _by_group(entries)
        with self.factory.begin() as session:
            for (exchange, timeframe), symbols in groups.items():
                self._fill(session, exchange, timeframe, symbols, now_ms)
        fetched = await asyncio.gather(
            *(self._fetch_group(exchange, tf, symbols, now_ms, outcome) for (exchange, tf), symbols in groups.items())
        )
        batches = {key: frames for key, frames in zip(groups, fetched, strict=True) if frames}
        if batches:
            t0 = time.perf_counter()
            with self.factory.begin() as session:  # one transaction, one executemany per exchange
                for (exchange, timeframe), frames in batches.items():
                    upsert_candles_many(session, exchange, timeframe, frames)
            outcome.store_s = time.perf_counter() - t0
            for (exchange, timeframe), frames in batches.items():  # committed: now the ring may hold them
                outcome.added += self.ring.count_new(exchange, timeframe, frames)
                self.ring.write(exchange, timeframe, timeframe_to_ms(timeframe), frames)
        return outcome

    async def _fetch_group(
        self, exchange: str, timeframe: str, symbols: list[str], now_ms: int, outcome: FetchOutcome
    ) -> dict[str, pd.DataFrame]:
        step = timeframe_to_ms(timeframe)
        start, open_bar = now_ms - self.ring.bars * step, now_ms - step + 1
        try:
            feed = await self.feeds.get(exchange)
        except Exception as err:  # the exchange cannot be opened: every symbol of it fails this cycle
            for symbol in symbols:
                outcome.errors[f"{exchange}:{symbol}"] = f"{type(err).__name__}: {err}"
            log.warning("%s: cannot open the feed: %s", exchange, err)
            return {}
        cap = self._caps.setdefault(exchange, asyncio.Semaphore(self.feeds.config(exchange).max_concurrency))
        unchecked = [s for s in symbols if (exchange, s, timeframe) not in self._gaps_checked]
        window = self.ring.frames(exchange, timeframe, unchecked, start_ms=start, end_ms=open_bar) if unchecked else {}
        last = self.ring.last_ts(exchange, timeframe, symbols)

        def ranges(symbol: str) -> list[tuple[int, int | None]]:
            if (exchange, symbol, timeframe) not in self._gaps_checked:
                have = window.get(symbol)
                present = pd.DatetimeIndex(have.index).as_unit("ms").asi8 if have is not None else np.empty(0, "int64")
                holes: list[tuple[int, int | None]] = list(missing_ranges(present, start, open_bar, step))
                if holes and holes[-1][1] >= open_bar:  # the trailing range runs to whatever has closed
                    holes[-1] = (holes[-1][0], None)
                return holes
            newest = last.get(symbol)
            since = start if newest is None else max(start, newest + step)
            return [] if since >= open_bar else [(since, None)]

        stream = await self._stream(exchange, timeframe, feed, symbols)

        async def rest(name: str, since: int, until: int | None) -> pd.DataFrame:
            async with cap:
                outcome.requests += 1
                return await feed.fetch_closed_candles(name, timeframe, since, until_ms=until, now_ms=now_ms)

        async def one(symbol: str) -> tuple[str, pd.DataFrame | None]:
            key = f"{exchange}:{symbol}"
            pieces = []
            try:
                name = await self._validate(feed, exchange, symbol)
                for since, until in ranges(symbol):
                    end = open_bar if until is None else min(until, open_bar)
                    todo: list[tuple[int, int | None]] = [(since, until)]
                    if stream is not None:  # what the stream has needs no request; REST fills the rest
                        pushed = stream.closed_bars(name, timeframe, since, now_ms)
                        pushed = pushed[pd.DatetimeIndex(pushed.index).as_unit("ms").asi8 < end]
                        if len(pushed):
                            pieces.append(pushed)
                            have = pd.DatetimeIndex(pushed.index).as_unit("ms").asi8
                            todo = [
                                (a, None if b >= end and until is None else b)
                                for a, b in missing_ranges(have, since, end, step)
                            ]
                    for a, b in todo:
                        got = await rest(name, a, b)
                        if len(got):
                            pieces.append(got)
            except Exception as err:  # one symbol must never stop the others
                outcome.errors[key] = f"{type(err).__name__}: {err}"
                log.warning("candles for %s failed: %s", key, err)
                return symbol, None
            self._gaps_checked.add((exchange, symbol, timeframe))
            if not pieces:
                return symbol, None
            frame = pieces[0] if len(pieces) == 1 else pd.concat(pieces)
            return symbol, frame[~frame.index.duplicated(keep="last")].sort_index()

        results = await asyncio.gather(*(one(s) for s in symbols))
        return {symbol: frame for symbol, frame in results if frame is not None}

    async def _stream(self, exchange: str, timeframe: str, feed: Any, symbols: list[str]) -> KlineStream | None:
        """The exchange's kline stream when configured, subscribed to every symbol (None: REST only)."""
        try:
            stream = await self.feeds.stream(exchange)
            if stream is None:
                return None
            names = []
            for symbol in symbols:
                try:
                    names.append(await self._validate(feed, exchange, symbol))
                except Exception:  # noqa: BLE001 - reported by the symbol's own fetch
                    continue
            await stream.watch((name, timeframe) for name in names)
            return stream
        except Exception as err:  # noqa: BLE001 - without the stream, REST still brings every bar
            log.warning("%s: kline stream unavailable (%s: %s); fetching over REST", exchange, type(err).__name__, err)
            return None

    async def _validate(self, feed: Any, exchange: str, symbol: str) -> str:
        name = self._validated.get((exchange, symbol))
        if name is None:
            name = self._validated[(exchange, symbol)] = str(await feed.validate_symbol(symbol))
        return name


def _by_group(entries: Sequence[WatchEntry]) -> dict[tuple[str, str], list[str]]:
    groups: dict[tuple[str, str], list[str]] = {}
    for e in entries:
        groups.setdefault((e.exchange, e.timeframe), []).append(e.symbol)
    return groups
