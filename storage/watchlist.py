"""The watchlist: which (exchange, symbol, timeframe) the loop fetches and scores.

The table is the one source of truth. The config's ``[[watchlist]]`` seeds it
(:func:`seed_watchlist`, on start and on ``vigil db upgrade``): an entry is
inserted only when the table has never had a row for that market. From then on
chat and CLI changes rule. Removing a market keeps its row, disabled, so a
market removed in chat stays removed even though the config still lists it;
adding it again (chat or CLI) re-enables the row.

Functions take the session first and never commit; the caller owns the
transaction. Symbols are stored upper-case, as ccxt spells them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from storage.models import WatchlistEntry, utcnow

__all__ = [
    "SOURCES",
    "add_watch",
    "enabled_markets",
    "list_watch",
    "market_settings",
    "record_checks",
    "remove_watch",
    "seed_watchlist",
    "watched_timeframes",
]

Market = tuple[str, str, str]  # (exchange, symbol, timeframe)
#: who can add a market: the config file (seeding), a chat command, a CLI command
SOURCES = ("config", "chat", "cli")


def _check_source(source: str | None) -> None:
    if source is not None and source not in SOURCES:
        raise ValueError(f"watchlist source {source!r}: expected one of {', '.join(SOURCES)}")


def add_watch(
    session: Session,
    exchange: str,
    symbol: str,
    timeframe: str,
    *,
    added_by: int | None = None,
    source: str | None = None,
    group: str | None = None,
    book_depth: int | None = None,
) -> tuple[WatchlistEntry, bool]:
    """Watch a market; returns the entry and whether it is new (re-enables a removed one, which becomes ours).

    ``group`` puts it in an asset group (kept when None); ``book_depth`` turns order-book
    snapshots on (kept when None).
    """
    _check_source(source)
    entry = session.scalar(
        select(WatchlistEntry).where(
            WatchlistEntry.exchange == exchange,
            WatchlistEntry.symbol == symbol,
            WatchlistEntry.timeframe == timeframe,
        )
    )
    if entry is not None:
        created = not entry.enabled
        if created:
            entry.enabled = True
            entry.added_by, entry.source, entry.created_at = added_by, source, utcnow()
            entry.last_error = None
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
        source=source,
        enabled=True,
        group_name=group,
        book_depth=book_depth,
    )
    session.add(entry)
    session.flush()
    return entry, True


def remove_watch(session: Session, symbol: str, *, timeframe: str | None = None, exchange: str | None = None) -> int:
    """Stop watching; returns how many entries went. Stored candles and events stay.

    The rows stay too, disabled: that is what keeps a removed config market from
    being seeded again on the next start.
    """
    stmt = update(WatchlistEntry).where(WatchlistEntry.symbol == symbol, WatchlistEntry.enabled.is_(True))
    if timeframe is not None:
        stmt = stmt.where(WatchlistEntry.timeframe == timeframe)
    if exchange is not None:
        stmt = stmt.where(WatchlistEntry.exchange == exchange)
    result: Any = session.execute(stmt.values(enabled=False))
    return int(result.rowcount or 0)


def seed_watchlist(
    session: Session,
    markets: Iterable[Market],
    settings: Mapping[Market, tuple[str | None, int | None]] | None = None,
) -> list[Market]:
    """Insert the config's markets the table has never seen; returns those inserted.

    A market with any row, enabled or removed, is left alone: after the first
    start the table rules. ``settings`` gives (asset group, order-book depth) per
    market: set on new rows, and filled in on existing rows where they are still
    unset (a value changed from chat or CLI is kept). Rows stored before origins
    were recorded that match a config market are marked as coming from the config.
    """
    wanted = list(dict.fromkeys(markets))
    if not wanted:
        return []
    settings = settings or {}
    rows = {(r.exchange, r.symbol, r.timeframe): r for r in session.scalars(select(WatchlistEntry))}
    added: list[Market] = []
    for market in wanted:
        group, depth = settings.get(market, (None, None))
        row = rows.get(market)
        if row is None:
            exchange, symbol, timeframe = market
            row = WatchlistEntry(exchange=exchange, symbol=symbol, timeframe=timeframe, source="config")
            session.add(row)
            added.append(market)
        elif row.source is None and row.added_by is None:
            row.source = "config"
        if row.group_name is None and group is not None:
            row.group_name = group
        if row.book_depth is None and depth is not None:
            row.book_depth = depth
    session.flush()
    return added


def list_watch(session: Session, *, symbol: str | None = None, enabled_only: bool = True) -> list[WatchlistEntry]:
    """Entries ordered by symbol, then timeframe."""
    q = select(WatchlistEntry)
    if enabled_only:
        q = q.where(WatchlistEntry.enabled.is_(True))
    if symbol is not None:
        q = q.where(WatchlistEntry.symbol == symbol)
    return list(session.scalars(q.order_by(WatchlistEntry.symbol, WatchlistEntry.timeframe, WatchlistEntry.exchange)))


def enabled_markets(session: Session, timeframe: str | None = None) -> list[Market]:
    """(exchange, symbol, timeframe) of every enabled entry (of ``timeframe`` when given)."""
    q = select(WatchlistEntry.exchange, WatchlistEntry.symbol, WatchlistEntry.timeframe).where(
        WatchlistEntry.enabled.is_(True)
    )
    if timeframe is not None:
        q = q.where(WatchlistEntry.timeframe == timeframe)
    return [(str(e), str(s), str(t)) for e, s, t in session.execute(q)]


def watched_timeframes(session: Session) -> list[str]:
    """The timeframes with at least one enabled entry."""
    q = select(WatchlistEntry.timeframe).where(WatchlistEntry.enabled.is_(True)).distinct()
    return sorted(str(t) for t in session.scalars(q))


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
    """Stamp each market's last check and last error (None clears it).

    Only rows that exist are stamped: a market removed while its cycle ran
    must not come back because the cycle reports on it.
    """
    rows = {
        (r.exchange, r.symbol, r.timeframe): r
        for r in session.scalars(select(WatchlistEntry).where(WatchlistEntry.timeframe == timeframe))
    }
    for market in markets:
        row = rows.get(market)
        if row is None:
            continue
        row.last_checked_at = now
        row.last_error = errors.get(market)
