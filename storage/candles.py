"""Candles in and out of the database.

``upsert_candles`` is the only way candles are written. It is idempotent on
both dialects (``INSERT ... ON CONFLICT (key) DO UPDATE``), so a re-import or a
re-fetch of the same bars leaves the table as it was, and a corrected bar
replaces the old one. Rows travel as tuples through the DBAPI's
``executemany`` in chunks: building a million ORM objects or dicts would cost
more than the insert itself (see ``bench/bench_candle_ingest.py``).

Functions take the session first and never commit: the caller owns the
transaction, so an import either lands whole or not at all.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from storage.grouped import grouped_rows
from storage.models import Candle

__all__ = [
    "CANDLE_COLUMNS",
    "candle_count",
    "candle_range",
    "delete_candles",
    "last_candle_ts",
    "load_candles",
    "load_candles_many",
    "delete_candles_from",
    "upsert_candles",
    "upsert_candles_many",
]

CANDLE_COLUMNS = ("open", "high", "low", "close", "volume")
_CHUNK = 50_000


def _frame_to_rows(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(ts_ms int64 array, float64 OHLCV matrix) from a frame indexed by time or with ``ts``."""
    if "ts" in frame.columns:
        ts = frame["ts"].to_numpy(dtype="int64")
    elif isinstance(frame.index, pd.DatetimeIndex):
        idx = frame.index
        if idx.tz is None:
            raise ValueError("candle frame index must be timezone-aware UTC")
        ts = idx.tz_convert("UTC").as_unit("ms").asi8
    else:
        raise ValueError("candle frame needs a 'ts' column (epoch ms) or a UTC DatetimeIndex")
    missing = [c for c in CANDLE_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"candle frame is missing columns: {', '.join(missing)}")
    values = frame[list(CANDLE_COLUMNS)].to_numpy(dtype="float64")
    return ts, values


def _upsert_sql(session: Session) -> tuple[Any, str, list[str]]:
    """(connection, SQL, parameter order) of the candle upsert, compiled once per call."""
    dialect = session.get_bind().dialect.name
    table = Candle.__table__
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(table)
    stmt = stmt.on_conflict_do_update(
        index_elements=["exchange", "symbol", "timeframe", "ts"],
        set_={c: stmt.excluded[c] for c in CANDLE_COLUMNS},
    )
    conn = session.connection()
    compiled = stmt.compile(dialect=conn.dialect)
    return conn, str(compiled), list(compiled.positiontup or [])


def _send_rows(
    session: Session, exchange: str, timeframe: str, symbols: list[str] | str, ts: np.ndarray, values: np.ndarray
) -> None:
    """Feed rows straight to the driver's ``executemany`` in chunks (``symbols``: one name, or one per row)."""
    conn, sql, order = _upsert_sql(session)
    names = ["exchange", "symbol", "timeframe", "ts", *CANDLE_COLUMNS]
    for start in range(0, len(ts), _CHUNK):
        stop = min(start + _CHUNK, len(ts))
        n = stop - start
        cols: dict[str, list[Any]] = {
            "exchange": [exchange] * n,
            "symbol": [symbols] * n if isinstance(symbols, str) else symbols[start:stop],
            "timeframe": [timeframe] * n,
            "ts": ts[start:stop].tolist(),
        }
        for j, name in enumerate(CANDLE_COLUMNS):
            cols[name] = values[start:stop, j].tolist()
        if order:  # qmark dialects (sqlite): positional tuples
            conn.exec_driver_sql(sql, list(zip(*(cols[name] for name in order), strict=True)))
        else:  # pyformat dialects (psycopg): named parameters
            conn.exec_driver_sql(sql, [dict(zip(names, row, strict=True)) for row in zip(*cols.values(), strict=True)])


def upsert_candles(session: Session, exchange: str, symbol: str, timeframe: str, frame: pd.DataFrame) -> int:
    """Insert or replace candles; returns how many rows were sent.

    ``frame`` is indexed by UTC open time (or has a ``ts`` column in epoch ms)
    and has ``open, high, low, close, volume`` columns.
    """
    ts, values = _frame_to_rows(frame)
    if len(ts) == 0:
        return 0
    _send_rows(session, exchange, timeframe, symbol, ts, values)
    return len(ts)


def upsert_candles_many(session: Session, exchange: str, timeframe: str, frames: Mapping[str, pd.DataFrame]) -> int:
    """Insert or replace the candles of many symbols in one ``executemany``; returns the rows sent.

    What a cycle stores: one new bar (or a few) for each of hundreds of symbols. One
    statement for all of them instead of one per symbol (see ``bench/bench_cycle.py``).
    """
    parts = [(symbol, *_frame_to_rows(frame)) for symbol, frame in frames.items() if len(frame)]
    if not parts:
        return 0
    symbols = [symbol for symbol, ts, _ in parts for _ in range(len(ts))]
    ts = np.concatenate([p[1] for p in parts])
    values = np.concatenate([p[2] for p in parts])
    _send_rows(session, exchange, timeframe, symbols, ts, values)
    return len(ts)


def load_candles(
    session: Session,
    exchange: str,
    symbol: str,
    timeframe: str,
    *,
    start_ms: int | None = None,
    end_ms: int | None = None,
    limit: int | None = None,
) -> pd.DataFrame:
    """Candles as a frame indexed by UTC open time, oldest first.

    ``start_ms`` is inclusive and ``end_ms`` exclusive. ``limit`` keeps the
    newest ``limit`` rows of the range (what a detector's lookback needs).
    """
    c = Candle.__table__.c
    query = select(c.ts, c.open, c.high, c.low, c.close, c.volume).where(
        c.exchange == exchange, c.symbol == symbol, c.timeframe == timeframe
    )
    if start_ms is not None:
        query = query.where(c.ts >= start_ms)
    if end_ms is not None:
        query = query.where(c.ts < end_ms)
    if limit is not None:
        query = query.order_by(c.ts.desc()).limit(limit)
    else:
        query = query.order_by(c.ts)
    rows = session.execute(query).all()
    # Plain tuples: pandas treats Row objects as mappings and looks every cell up by key.
    # One float64 array, not DataFrame.astype (ms per call, and a cycle loads one frame per symbol).
    # Epoch ms are exact in float64 (< 2**53).
    values = np.array([tuple(r) for r in rows], dtype="float64").reshape(len(rows), 1 + len(CANDLE_COLUMNS))
    if limit is not None:
        values = values[::-1]
    return _candle_frame(values)


def _candle_frame(values: np.ndarray) -> pd.DataFrame:
    """Rows ``(ts ms, open, high, low, close, volume)`` as a candle frame on a UTC ns index."""
    index = pd.DatetimeIndex(pd.to_datetime(values[:, 0].astype("int64"), unit="ms", utc=True), name="time")
    return pd.DataFrame(np.ascontiguousarray(values[:, 1:]), index=index.as_unit("ns"), columns=list(CANDLE_COLUMNS))


def load_candles_many(
    session: Session,
    exchange: str,
    timeframe: str,
    symbols: Sequence[str],
    *,
    start_ms: int,
    end_ms: int,
    chunk: int = 500,
) -> dict[str, pd.DataFrame]:
    """Candles of many symbols in ``[start_ms, end_ms)``, one query per ``chunk`` symbols.

    What a cycle needs: the same window for every watched symbol. One query and
    one numpy split replace a query and a frame build per symbol, which at 500
    symbols cost more than scoring them. Symbols without rows are left out.
    """
    c = Candle.__table__.c

    def query_for(part: list[str]) -> Any:
        return (
            select(c.symbol, c.ts, c.open, c.high, c.low, c.close, c.volume)
            .where(c.exchange == exchange, c.timeframe == timeframe, c.symbol.in_(part))
            .where(c.ts >= start_ms, c.ts < end_ms)
            .order_by(c.symbol, c.ts)
        )

    return {symbol: _candle_frame(block) for symbol, block in grouped_rows(session, symbols, query_for, chunk)}


def last_candle_ts(session: Session, exchange: str, symbol: str, timeframe: str) -> int | None:
    """Open time (epoch ms) of the newest stored candle, or None."""
    c = Candle.__table__.c
    return session.execute(
        select(func.max(c.ts)).where(c.exchange == exchange, c.symbol == symbol, c.timeframe == timeframe)
    ).scalar_one_or_none()


def candle_range(
    session: Session,
    exchange: str,
    symbol: str,
    timeframe: str,
    *,
    start_ms: int | None = None,
    end_ms: int | None = None,
) -> tuple[int, int, int] | None:
    """(first ts, last ts, count) of stored candles with ``start_ms <= ts <= end_ms``, or None when there are none.

    One indexed aggregate: cheap enough to ask every cycle, unlike loading the timestamps.
    """
    c = Candle.__table__.c
    query = select(func.min(c.ts), func.max(c.ts), func.count()).where(
        c.exchange == exchange, c.symbol == symbol, c.timeframe == timeframe
    )
    if start_ms is not None:
        query = query.where(c.ts >= start_ms)
    if end_ms is not None:
        query = query.where(c.ts <= end_ms)
    first, last, count = session.execute(query).one()
    return None if count == 0 else (int(first), int(last), int(count))


def candle_count(session: Session, exchange: str | None = None, symbol: str | None = None) -> int:
    c = Candle.__table__.c
    query = select(func.count()).select_from(Candle.__table__)
    if exchange is not None:
        query = query.where(c.exchange == exchange)
    if symbol is not None:
        query = query.where(c.symbol == symbol)
    return int(session.execute(query).scalar_one())


def delete_candles(session: Session, exchange: str, symbol: str, timeframe: str, ts: Sequence[int]) -> int:
    """Remove specific bars (used to drop a bar found to be still open)."""
    c = Candle.__table__.c
    result = session.execute(
        delete(Candle.__table__).where(
            c.exchange == exchange, c.symbol == symbol, c.timeframe == timeframe, c.ts.in_(list(ts))
        )
    )
    return int(result.rowcount or 0)


def delete_candles_from(session: Session, exchange: str, timeframe: str, symbols: Sequence[str], start_ms: int) -> int:
    """Remove the bars opening at or after ``start_ms`` of many symbols (bars found to be still open)."""
    c = Candle.__table__.c
    removed = 0
    names = list(symbols)
    for first in range(0, len(names), 500):
        result = session.execute(
            delete(Candle.__table__).where(
                c.exchange == exchange,
                c.timeframe == timeframe,
                c.symbol.in_(names[first : first + 500]),
                c.ts >= start_ms,
            )
        )
        removed += int(result.rowcount or 0)
    return removed
