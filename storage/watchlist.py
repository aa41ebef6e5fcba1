"""The watchlist: which (exchange, symbol, timeframe) the loop fetches and scores.

Functions take the session first and never commit; the caller owns the
transaction. Symbols are stored upper-case, as ccxt spells them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from storage.models import WatchlistEntry

__all__ = ["add_watch", "enabled_markets", "list_watch", "market_settings", "record_checks", "remove_watch"]

Market = tuple[str, str, str]  # (exchange, symbol, timeframe)


def add_watch(
    session: Session,
    exchange: str,
    symbol: str,
    timeframe: str,
    *,
    added_by: int | None = None,
    group: str | None = None,
    book_depth: int | None = None,
) -> tuple[WatchlistEntry, bool]:
    """Watch a market; returns the entry and whether it is new (re-enables a disabled one).

    ``group`` puts it in an asset group (kept when None); ``book_depth`` turns order-book
    snapshots on (kept when None).
    """
    entry = session.scalar(
        select(WatchlistEntry).where(
            WatchlistEntry.exchange == exchange,
            WatchlistEntry.symbol == symbol,
            WatchlistEntry.timeframe == timeframe,
        )
    )
    if entry is not None:
        created = not entry.enabled
        entry.enabled = True
        if group is not None:
            entry.group_name = group
        if book_depth is not None:
            entry.book_depth = book_depth
        return entry, created
    entry = WatchlistEntry(
        exchange=exchange,
        symbol=symbol,
        timeframe=timeframe,
        added_by=added_by,
        enabled=True,
        group_name=group,
        book_depth=book_depth,
    )
    session.add(entry)
    session.flush()
    return entry, True


def remove_watch(session: Session, symbol: str, *, timeframe: str | None = None, exchange: str | None = None) -> int:
    """Stop watching; returns how many entries went. Stored candles and events stay."""
    stmt = delete(WatchlistEntry).where(WatchlistEntry.symbol == symbol)
    if timeframe is not None:
        stmt = stmt.where(WatchlistEntry.timeframe == timeframe)
    if exchange is not None:
        stmt = stmt.where(WatchlistEntry.exchange == exchange)
    return int(session.execute(stmt).rowcount or 0)


def list_watch(session: Session, *, symbol: str | None = None, enabled_only: bool = True) -> list[WatchlistEntry]:
    """Entries ordered by symbol, then timeframe."""
    q = select(WatchlistEntry)
    if enabled_only:
        q = q.where(WatchlistEntry.enabled.is_(True))
    if symbol is not None:
        q = q.where(WatchlistEntry.symbol == symbol)
    return list(session.scalars(q.order_by(WatchlistEntry.symbol, WatchlistEntry.timeframe, WatchlistEntry.exchange)))


def enabled_markets(session: Session) -> list[Market]:
    """(exchange, symbol, timeframe) of every enabled entry."""
    rows = session.execute(
        select(WatchlistEntry.exchange, WatchlistEntry.symbol, WatchlistEntry.timeframe).where(
            WatchlistEntry.enabled.is_(True)
        )
    )
    return [(str(e), str(s), str(t)) for e, s, t in rows]


def market_settings(session: Session) -> dict[Market, tuple[str | None, int | None]]:
    """(group, order-book depth) of every enabled entry that has either set."""
    rows = session.execute(
        select(
            WatchlistEntry.exchange,
            WatchlistEntry.symbol,
            WatchlistEntry.timeframe,
            WatchlistEntry.group_name,
            WatchlistEntry.book_depth,
        ).where(
            WatchlistEntry.enabled.is_(True),
            (WatchlistEntry.group_name.is_not(None)) | (WatchlistEntry.book_depth.is_not(None)),
        )
    )
    return {(str(e), str(s), str(t)): (g, d) for e, s, t, g, d in rows}


def record_checks(
    session: Session, timeframe: str, markets: Iterable[Market], errors: Mapping[Market, str], now: datetime
) -> None:
    """Stamp each market's last check and last error (None clears it); adds rows for markets not yet stored."""
    rows = {
        (r.exchange, r.symbol, r.timeframe): r
        for r in session.scalars(select(WatchlistEntry).where(WatchlistEntry.timeframe == timeframe))
    }
    for market in markets:
        row = rows.get(market)
        if row is None:
            exchange, symbol, tf = market
            row = WatchlistEntry(exchange=exchange, symbol=symbol, timeframe=tf)
            session.add(row)
        row.last_checked_at = now
        row.last_error = errors.get(market)
