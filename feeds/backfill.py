"""Keep stored candles complete: incremental sync, gap filling, resumable backfill.

The database is the only state. Each page fetched is written (and committed)
before the next is asked for, so killing a backfill half-way loses nothing
and running it again continues from the newest stored bar. Holes inside the
stored range (an earlier outage, an interrupted gap fill) are found by
comparing consecutive timestamps and re-requested; holes the exchange itself
has (real downtime) simply come back empty and stay counted as gaps.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core.errors import BotError
from core.timeframes import align_down, timeframe_to_ms
from feeds.base import CandleFeed
from storage.candles import candle_range, delete_candles, upsert_candles
from storage.db import session_scope
from storage.models import Candle

__all__ = ["DEFAULT_HISTORY_BARS", "SyncResult", "find_gaps", "sync_candles", "sync_many"]

log = logging.getLogger(__name__)

DEFAULT_HISTORY_BARS = 1000
ProgressCallback = Callable[[int, int], None]  # (bars stored so far, bars expected)


@dataclass(frozen=True)
class SyncResult:
    """What one sync did. ``first_ts``/``last_ts`` are the stored range afterwards (ms)."""

    rows_added: int
    gaps_filled: int
    first_ts: int | None
    last_ts: int | None
    gaps_remaining: int = 0


def find_gaps(ts: np.ndarray, step_ms: int) -> list[tuple[int, int]]:
    """Holes in sorted bar open times, as ``(first missing, last missing)`` pairs (ms).

    Parameters
    ----------
    ts : ndarray of int64, shape (n,)
        Sorted bar open times.
    """
    if len(ts) < 2:
        return []
    diffs = np.diff(ts)
    idx = np.flatnonzero(diffs > step_ms)
    return [(int(ts[i]) + step_ms, int(ts[i + 1]) - step_ms) for i in idx]


def _stored_ts(session: Session, exchange: str, symbol: str, timeframe: str, start_ms: int | None) -> np.ndarray:
    c = Candle.__table__.c
    query = select(c.ts).where(c.exchange == exchange, c.symbol == symbol, c.timeframe == timeframe)
    if start_ms is not None:
        query = query.where(c.ts >= start_ms)
    return np.asarray(session.execute(query.order_by(c.ts)).scalars().all(), dtype="int64")


def _count_gaps(
    session: Session, exchange: str, symbol: str, timeframe: str, start_ms: int | None, step_ms: int
) -> int:
    """Holes in the stored bars from ``start_ms`` on; timestamps are loaded only when the count shows some."""
    span = candle_range(session, exchange, symbol, timeframe, start_ms=start_ms)
    if span is None or span[2] == (span[1] - span[0]) // step_ms + 1:
        return 0
    return len(find_gaps(_stored_ts(session, exchange, symbol, timeframe, start_ms), step_ms))


async def _store_range(
    feed: CandleFeed,
    factory: sessionmaker[Session],
    symbol: str,
    timeframe: str,
    start_ms: int,
    end_ms: int | None,
    now_ms: int,
    on_rows: Callable[[int], None],
) -> int:
    """Fetch ``[start_ms, end_ms)`` page by page, committing each page; returns new rows."""
    added = 0
    async for page in feed.iter_closed_candles(symbol, timeframe, start_ms, until_ms=end_ms, now_ms=now_ms):
        if page.empty:
            continue
        ts = pd.DatetimeIndex(page.index).as_unit("ms").asi8
        with session_scope(factory) as session:
            # Rows already stored inside the page's span: an indexed count, not a scan of the symbol.
            known = candle_range(session, feed.name, symbol, timeframe, start_ms=int(ts.min()), end_ms=int(ts.max()))
            upsert_candles(session, feed.name, symbol, timeframe, page)
        added += len(np.unique(ts)) - (known[2] if known else 0)
        on_rows(len(page))
    return added


async def sync_candles(
    feed: CandleFeed,
    session_factory: sessionmaker[Session],
    symbol: str,
    timeframe: str,
    *,
    since_ms: int | None = None,
    now_ms: int | None = None,
    fill_gaps: bool = True,
    progress: ProgressCallback | None = None,
) -> SyncResult:
    """Bring stored ``feed.name:symbol:timeframe`` candles up to the last closed bar.

    With nothing stored, starts at ``since_ms`` (default: the last
    ``DEFAULT_HISTORY_BARS`` bars). With data stored: fetches bars before the
    first stored one back to ``since_ms`` (if earlier), re-requests holes at
    or after ``since_ms``, then continues from the newest stored bar. A
    stored bar that turns out to be still open (imported, or stored by an
    older version) is deleted: it would be wrong until it closes.
    """
    step = timeframe_to_ms(timeframe)
    now = int(time.time() * 1000) if now_ms is None else now_ms
    open_bar = now - step + 1  # bars opening at or after this are still open
    symbol = await feed.validate_symbol(symbol)
    name = feed.name

    factory = session_factory
    with session_scope(factory) as session:
        stale = _stored_ts(session, name, symbol, timeframe, open_bar)
        if len(stale):
            delete_candles(session, name, symbol, timeframe, stale.tolist())
        stored = candle_range(session, name, symbol, timeframe)
        gaps = find_gaps(_stored_ts(session, name, symbol, timeframe, since_ms), step) if stored and fill_gaps else []

    if stored is None:
        start = since_ms if since_ms is not None else align_down(now, timeframe) - DEFAULT_HISTORY_BARS * step
        expected = max(0, (open_bar - start) // step)
    else:
        start = stored[1] + step
        expected = max(0, (open_bar - start) // step) + sum((b - a) // step + 1 for a, b in gaps)
        if since_ms is not None and since_ms < stored[0]:
            expected += (stored[0] - since_ms) // step

    done = 0

    def on_rows(n: int) -> None:
        nonlocal done
        done += n
        if progress is not None:
            progress(done, max(expected, done))

    added = 0
    if stored is not None and since_ms is not None and since_ms < stored[0]:
        added += await _store_range(feed, factory, symbol, timeframe, since_ms, stored[0], now, on_rows)
    filled = 0
    for first_missing, last_missing in gaps:
        got = await _store_range(feed, factory, symbol, timeframe, first_missing, last_missing + step, now, on_rows)
        if got:
            filled += 1
            added += got
    added += await _store_range(feed, factory, symbol, timeframe, start, None, now, on_rows)

    with session_scope(factory) as session:
        final = candle_range(session, name, symbol, timeframe)
        remaining = _count_gaps(session, name, symbol, timeframe, since_ms, step) if final else 0
    if progress is not None:
        progress(done, done)
    log.info("%s %s %s: %d rows added, %d gaps filled", name, symbol, timeframe, added, filled)
    return SyncResult(
        rows_added=added,
        gaps_filled=filled,
        first_ts=final[0] if final else None,
        last_ts=final[1] if final else None,
        gaps_remaining=remaining,
    )


async def sync_many(
    feed: CandleFeed,
    session_factory: sessionmaker[Session],
    entries: Iterable[tuple[str, str]],
    *,
    since_ms: int | None = None,
    now_ms: int | None = None,
    fill_gaps: bool = True,
) -> dict[tuple[str, str], SyncResult | Exception]:
    """Sync many ``(symbol, timeframe)`` pairs at once.

    Concurrency is bounded by the feed (``max_concurrency`` requests in
    flight, ccxt's rate limiter). One entry failing (an unlisted symbol, an
    exchange that stays down) does not stop the others: its slot holds the
    exception, a :class:`~core.errors.BadSymbolError` for a permanent one.
    """
    keys = list(dict.fromkeys(entries))

    async def one(symbol: str, timeframe: str) -> SyncResult | Exception:
        try:
            return await sync_candles(
                feed, session_factory, symbol, timeframe, since_ms=since_ms, now_ms=now_ms, fill_gaps=fill_gaps
            )
        except BotError as err:
            log.warning("%s %s %s: %s", feed.name, symbol, timeframe, err)
            return err

    results: list[Any] = await asyncio.gather(*(one(s, tf) for s, tf in keys))
    return dict(zip(keys, results, strict=True))
