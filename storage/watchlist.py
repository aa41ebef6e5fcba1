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

__all__ = ["add_watch", "enabled_markets", "list_watch", "record_checks", "remove_watch"]

Market = tuple[str, str, str]  # (exchange, symbol, timeframe)


def add_watch(
    session: Session, exchange: str, symbol: str, timeframe: str, *, added_by: int | None = None
) -> tuple[WatchlistEntry, bool]:
    """Watch a market; returns the entry and whether it is new (re-enables a disabled one)."""
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
        return entry, created
    entry = WatchlistEntry(exchange=exchange, symbol=symbol, timeframe=timeframe, added_by=added_by, enabled=True)
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
