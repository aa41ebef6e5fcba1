"""Order-book features in and out of the database (``book_features``).

``upsert_book`` is idempotent on both dialects (one row per market and bar: a redone
cycle overwrites its own snapshot); ``load_book_many`` reads a cycle's window for many
symbols of one exchange in one query; ``prune_book`` bounds the table by age. Functions
take the session first and never commit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from storage.models import BookFeatures

__all__ = ["BOOK_FIELDS", "load_book_many", "prune_book", "upsert_book"]

#: frame column -> table column
BOOK_FIELDS: dict[str, str] = {
    "book_spread_bps": "spread_bps",
    "book_imbalance_1pct": "imbalance_1pct",
    "book_imbalance_5pct": "imbalance_5pct",
    "book_depth_1pct": "depth_1pct",
}


def _finite(value: Any) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if np.isfinite(v) else None


def upsert_book(session: Session, exchange: str, symbol: str, ts_ms: int, features: Mapping[str, float]) -> None:
    """Store (or replace) one market's book features at bar ``ts_ms``; NaN is stored as NULL."""
    values = {column: _finite(features.get(name)) for name, column in BOOK_FIELDS.items()}
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    stmt = insert(BookFeatures).values(exchange=exchange, symbol=symbol, ts=int(ts_ms), **values)
    stmt = stmt.on_conflict_do_update(index_elements=["exchange", "symbol", "ts"], set_=values)
    session.execute(stmt)


def load_book_many(
    session: Session, exchange: str, symbols: Sequence[str], *, start_ms: int, end_ms: int
) -> dict[str, pd.DataFrame]:
    """Per symbol, the stored features with ``start_ms <= ts < end_ms`` (frame columns, UTC index).

    Symbols without rows are left out.
    """
    if not symbols:
        return {}
    c = BookFeatures.__table__.c
    rows = session.execute(
        select(c.symbol, c.ts, *(c[col] for col in BOOK_FIELDS.values()))
        .where(c.exchange == exchange, c.symbol.in_(list(symbols)), c.ts >= start_ms, c.ts < end_ms)
        .order_by(c.symbol, c.ts)
    ).all()
    out: dict[str, pd.DataFrame] = {}
    for symbol in dict.fromkeys(r[0] for r in rows):
        mine = [r for r in rows if r[0] == symbol]
        values = np.array([[np.nan if v is None else v for v in r[2:]] for r in mine], dtype="float64")
        index = pd.DatetimeIndex(pd.to_datetime([r[1] for r in mine], unit="ms", utc=True), name="time")
        out[symbol] = pd.DataFrame(values, index=index, columns=list(BOOK_FIELDS))
    return out


def prune_book(session: Session, *, before_ms: int) -> int:
    """Delete features of bars older than ``before_ms``; returns how many rows went."""
    return int(session.execute(delete(BookFeatures).where(BookFeatures.ts < before_ms)).rowcount or 0)
