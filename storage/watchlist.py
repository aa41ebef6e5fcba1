"""The watchlist: which (exchange, symbol, timeframe) the loop fetches and scores.

Functions take the session first and never commit; the caller owns the
transaction. Symbols are stored upper-case, as ccxt spells them.
"""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from storage.models import WatchlistEntry

__all__ = ["add_watch", "list_watch", "remove_watch"]


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
