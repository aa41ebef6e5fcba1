"""The ``cycles`` table: each run of the main job, and how far scoring got.

A cycle is opened when it starts and finished with ``until_ms`` (the close of
the newest bar it scored) only when everything after scoring succeeded. The
next cycle scores from the newest *finished* ``until_ms`` onward, which is
what makes a crashed cycle's work be redone rather than lost.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from storage.models import Cycle, utcnow

__all__ = [
    "ABANDONED",
    "close_abandoned",
    "cycle_stats_since",
    "finish_cycle",
    "last_cycle",
    "open_cycle",
    "scored_until",
]

ABANDONED = "abandoned: the process stopped before this cycle finished; its bars were scored again"


def open_cycle(session: Session, timeframe: str) -> int:
    """Record a cycle as started; returns its id."""
    cycle = Cycle(timeframe=timeframe)
    session.add(cycle)
    session.flush()
    return int(cycle.id)


def finish_cycle(
    session: Session,
    cycle_id: int,
    *,
    until_ms: int,
    symbols: int,
    candles_added: int,
    events: int,
    errors: list[str],
) -> None:
    """Mark a cycle finished: bars closing at or before ``until_ms`` count as scored from now on."""
    cycle = session.get(Cycle, cycle_id)
    if cycle is None:
        raise LookupError(f"cycle {cycle_id} does not exist")
    cycle.finished_at = utcnow()
    cycle.until_ms = until_ms
    cycle.symbols = symbols
    cycle.candles_added = candles_added
    cycle.events = events
    cycle.errors = len(errors)
    cycle.last_error = "; ".join(errors[:5]) or None


def close_abandoned(session: Session, *, now: datetime | None = None) -> int:
    """Mark every unfinished cycle as abandoned (at start, when none can still be running); returns how many.

    ``until_ms`` stays NULL, so :func:`scored_until` ignores them and their bars are scored again.
    """
    rows = list(session.scalars(select(Cycle).where(Cycle.finished_at.is_(None))))
    for cycle in rows:
        cycle.finished_at = now or utcnow()
        cycle.errors += 1
        cycle.last_error = ABANDONED
    return len(rows)


def scored_until(session: Session, timeframe: str) -> int | None:
    """``until_ms`` of the newest finished cycle of ``timeframe`` (None before the first)."""
    return session.execute(
        select(Cycle.until_ms)
        .where(Cycle.timeframe == timeframe, Cycle.finished_at.is_not(None), Cycle.until_ms.is_not(None))
        .order_by(Cycle.until_ms.desc())
        .limit(1)
    ).scalar_one_or_none()


def last_cycle(session: Session) -> Cycle | None:
    """The most recently started cycle, finished or not."""
    return session.scalar(select(Cycle).order_by(Cycle.started_at.desc(), Cycle.id.desc()).limit(1))


def cycle_stats_since(session: Session, since: datetime) -> tuple[int, int]:
    """(cycles started, errors recorded) since ``since``."""
    n, errors = session.execute(
        select(func.count(), func.coalesce(func.sum(Cycle.errors), 0)).where(Cycle.started_at >= since)
    ).one()
    return int(n), int(errors)
