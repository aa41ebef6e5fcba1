"""Social-volume samples in and out of the database.

Same contract as candles: ``upsert_social`` is idempotent on both dialects
(``INSERT ... ON CONFLICT DO UPDATE`` on source, symbol, metric, ts), so
re-fetching an overlapping window leaves one row per sample and a revised
value replaces the old one. Functions take the session first and never commit.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from storage.grouped import grouped_rows
from storage.models import SocialPoint

__all__ = ["load_social", "load_social_many", "upsert_social"]


def _series_ts(series: pd.Series) -> np.ndarray:
    idx = series.index
    if not isinstance(idx, pd.DatetimeIndex):
        raise ValueError("social series must be indexed by a UTC DatetimeIndex")
    if idx.tz is None:
        raise ValueError("social series index must be timezone-aware UTC")
    return idx.tz_convert("UTC").as_unit("ms").asi8


def upsert_social(session: Session, source: str, symbol: str, metric: str, series: pd.Series) -> int:
    """Insert or replace samples; NaN samples are skipped. Returns how many rows were sent."""
    ts = _series_ts(series)
    values = series.to_numpy(dtype="float64")
    keep = np.isfinite(values)
    ts, values = ts[keep], values[keep]
    if len(ts) == 0:
        return 0
    # one row per timestamp (the last wins), or ON CONFLICT would see the same key twice
    _, last = np.unique(ts[::-1], return_index=True)
    order = len(ts) - 1 - last
    ts, values = ts[order], values[order]
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    stmt = insert(SocialPoint)
    stmt = stmt.on_conflict_do_update(
        index_elements=["source", "symbol", "metric", "ts"], set_={"value": stmt.excluded.value}
    )
    rows = [
        {"source": source, "symbol": symbol, "metric": metric, "ts": t, "value": v}
        for t, v in zip(ts.tolist(), values.tolist(), strict=True)
    ]
    for start in range(0, len(rows), 10_000):
        session.execute(stmt, rows[start : start + 10_000])
    return len(rows)


def load_social_many(
    session: Session, symbols: Sequence[str], *, start_ms: int, end_ms: int, chunk: int = 500
) -> dict[str, pd.Series]:
    """:func:`load_social` for many symbols in one query per ``chunk``: a cycle's social window.

    The primary key leads with the source, so a per-symbol query scans the
    table once per symbol; this scans it once per cycle. Symbols without
    samples are left out; sources sharing a timestamp are summed.
    """
    c = SocialPoint.__table__.c

    def query_for(part: list[str]) -> Any:
        return (
            select(c.symbol, c.ts, c.value)
            .where(c.symbol.in_(part), c.ts >= start_ms, c.ts < end_ms)
            .order_by(c.symbol, c.ts)
        )

    return {
        symbol: _summed(block[:, 0].astype("int64"), block[:, 1], "social_volume")
        for symbol, block in grouped_rows(session, symbols, query_for, chunk)
    }


def _summed(ts: np.ndarray, values: np.ndarray, name: str) -> pd.Series:
    """Sum samples that share a timestamp (several sources); ``ts`` sorted."""
    unique, first = np.unique(ts, return_index=True)
    sums = np.add.reduceat(values, first) if len(first) else np.empty(0)
    index = pd.DatetimeIndex(pd.to_datetime(unique, unit="ms", utc=True), name="time")
    return pd.Series(sums, index=index, name=name)


def load_social(
    session: Session,
    symbol: str,
    *,
    start_ms: int | None = None,
    end_ms: int | None = None,
    metric: str | None = None,
    source: str | None = None,
) -> pd.Series:
    """Samples for ``symbol`` as a float series on a UTC index (``start`` inclusive, ``end`` exclusive).

    When several sources hold the same timestamp the values are summed: they
    count mentions in different places. Pass ``source`` to read one only.
    """
    c = SocialPoint.__table__.c
    query = select(c.ts, c.value).where(c.symbol == symbol)
    if metric is not None:
        query = query.where(c.metric == metric)
    if source is not None:
        query = query.where(c.source == source)
    if start_ms is not None:
        query = query.where(c.ts >= start_ms)
    if end_ms is not None:
        query = query.where(c.ts < end_ms)
    rows = session.execute(query.order_by(c.ts)).all()
    values = np.array([tuple(r) for r in rows], dtype="float64").reshape(len(rows), 2)
    return _summed(values[:, 0].astype("int64"), values[:, 1], metric or "social_volume")
