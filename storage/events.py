"""Anomaly events: stored once, read by the bot, the backtester and reports.

An event is keyed by (exchange, symbol, timeframe, detector, bar_ts). Storing
is ``INSERT ... ON CONFLICT DO NOTHING`` and returns only the rows that were
new, so re-scoring bars after a restart can never alert twice: the caller
alerts on what :func:`insert_events` returns and on nothing else.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from storage.models import Event, Severity

__all__ = ["NewEvent", "detectors_seen", "events_frame", "insert_events", "list_events"]


@dataclass(frozen=True)
class NewEvent:
    """An event a detector produced, before it has an id."""

    exchange: str
    symbol: str
    timeframe: str
    detector: str
    bar_ts: int
    score: float
    threshold: float
    severity: str = Severity.LOW.value
    kind: str = "anomaly"
    details: dict[str, Any] = field(default_factory=dict)
    model_version: str | None = None

    def key(self) -> tuple[str, str, str, str, int]:
        return (self.exchange, self.symbol, self.timeframe, self.detector, self.bar_ts)


def insert_events(session: Session, events: Sequence[NewEvent]) -> list[Event]:
    """Store events; return the ones that were not stored before, oldest bar first."""
    if not events:
        return []
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    keys = [e.key() for e in events]
    rows = [
        {
            "exchange": e.exchange,
            "symbol": e.symbol,
            "timeframe": e.timeframe,
            "detector": e.detector,
            "bar_ts": int(e.bar_ts),
            "score": float(e.score),
            "threshold": float(e.threshold),
            "severity": str(e.severity),
            "kind": e.kind,
            "details": e.details,
            "model_version": e.model_version,
        }
        for e in events
    ]
    stmt = (
        insert(Event)
        .values(rows)
        .on_conflict_do_nothing(index_elements=["exchange", "symbol", "timeframe", "detector", "bar_ts"])
        .returning(Event.id)
    )
    new_ids = [row[0] for row in session.execute(stmt)]
    if not new_ids:
        return []
    fresh = session.scalars(select(Event).where(Event.id.in_(new_ids))).all()
    wanted = set(keys)
    return sorted(
        (e for e in fresh if (e.exchange, e.symbol, e.timeframe, e.detector, e.bar_ts) in wanted),
        key=lambda e: (e.bar_ts, e.symbol, e.detector),
    )


def list_events(
    session: Session,
    *,
    exchange: str | None = None,
    symbol: str | None = None,
    timeframe: str | None = None,
    detector: str | None = None,
    since_ms: int | None = None,
    until_ms: int | None = None,
    min_score: float | None = None,
    limit: int | None = None,
    newest_first: bool = True,
) -> list[Event]:
    """Events matching every given filter; ``until_ms`` is exclusive."""
    q = select(Event)
    for column, value in (
        (Event.exchange, exchange),
        (Event.symbol, symbol),
        (Event.timeframe, timeframe),
        (Event.detector, detector),
    ):
        if value is not None:
            q = q.where(column == value)
    if since_ms is not None:
        q = q.where(Event.bar_ts >= since_ms)
    if until_ms is not None:
        q = q.where(Event.bar_ts < until_ms)
    if min_score is not None:
        q = q.where(Event.score >= min_score)
    order = (Event.bar_ts.desc(), Event.id.desc()) if newest_first else (Event.bar_ts, Event.id)
    q = q.order_by(*order)
    if limit is not None:
        q = q.limit(limit)
    return list(session.scalars(q))


def _move(e: Event) -> float:
    """Which way the event's market moved: its gap to its asset group, else the bar's price change (NaN: unknown)."""
    details = e.details or {}
    for key in ("group_gap", "price_change"):
        value = details.get(key)
        if isinstance(value, (int, float)):
            return float(value)
    return float("nan")


def events_frame(events: Sequence[Event]) -> pd.DataFrame:
    """Events as a frame with a UTC ``timestamp`` column (the bar open time), oldest first.

    ``move`` says which way the market moved at the event (see :func:`_move`), for
    strategies that trade against it.
    """
    frame = pd.DataFrame(
        [
            {
                "timestamp": pd.Timestamp(e.bar_ts, unit="ms", tz="UTC"),
                "exchange": e.exchange,
                "symbol": e.symbol,
                "timeframe": e.timeframe,
                "detector": e.detector,
                "score": e.score,
                "threshold": e.threshold,
                "severity": e.severity,
                "kind": e.kind,
                "move": _move(e),
            }
            for e in events
        ],
        columns=[
            "timestamp",
            "exchange",
            "symbol",
            "timeframe",
            "detector",
            "score",
            "threshold",
            "severity",
            "kind",
            "move",
        ],
    )
    return frame.sort_values("timestamp", kind="stable").reset_index(drop=True)


def detectors_seen(session: Session) -> list[str]:
    """Every detector name that has stored at least one event."""
    return list(session.scalars(select(Event.detector).distinct()))
