"""What the live trade streams keep: closed chunks (with their pump score) and, optionally, raw trades.

Ingested trades are mostly *not* stored: a chunk row carries what the detector and the alert
chart need (rush orders, order count, volume, last and max price, score). Raw trades are kept
only for a bounded window (``streams.keep_raw_minutes``) and chunks for ``keep_chunks_days``;
:func:`prune_stream_data` enforces both. Writes are idempotent (a chunk re-closed after a
restart replaces its row; a trade seen twice is stored once). Session first, never commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from storage.models import StreamTrade, TradeChunk

__all__ = ["CHUNK_COUNT_COLUMNS", "load_chunks", "prune_stream_data", "store_chunks", "store_stream_trades"]

CHUNK_COUNT_COLUMNS = ("rush", "trades", "volume", "price", "price_max")


def _insert(session: Session) -> Any:
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


def store_chunks(
    session: Session,
    exchange: str,
    chunk_s: int,
    symbols: Sequence[str],
    start_ms: np.ndarray,
    counts: np.ndarray,
    scores: np.ndarray | None = None,
) -> int:
    """Upsert closed chunks: ``counts`` (k, 5) in ``CHUNK_COUNT_COLUMNS`` order, ``scores`` (k,) or None."""
    if len(symbols) == 0:
        return 0
    sc = np.full(len(symbols), np.nan) if scores is None else np.asarray(scores, float)
    rows = [
        {
            "exchange": exchange,
            "symbol": sym,
            "chunk_s": int(chunk_s),
            "ts": int(ts),
            **{c: float(v) for c, v in zip(CHUNK_COUNT_COLUMNS, row, strict=True)},
            "score": None if not np.isfinite(s) else float(s),
        }
        for sym, ts, row, s in zip(
            symbols, np.asarray(start_ms).tolist(), np.asarray(counts).tolist(), sc.tolist(), strict=True
        )
    ]
    stmt = _insert(session)(TradeChunk)
    stmt = stmt.on_conflict_do_update(
        index_elements=["exchange", "symbol", "chunk_s", "ts"],
        set_={c: stmt.excluded[c] for c in (*CHUNK_COUNT_COLUMNS, "score")},
    )
    session.execute(stmt, rows)
    return len(rows)


def load_chunks(
    session: Session,
    exchange: str,
    symbol: str,
    chunk_s: int,
    *,
    start_ms: int | None = None,
    end_ms: int | None = None,
) -> pd.DataFrame:
    """Stored chunks of one symbol, indexed by chunk start (UTC): the counts and ``score``; ``end_ms`` exclusive."""
    q = select(TradeChunk.ts, *(getattr(TradeChunk, c) for c in CHUNK_COUNT_COLUMNS), TradeChunk.score).where(
        TradeChunk.exchange == exchange, TradeChunk.symbol == symbol, TradeChunk.chunk_s == int(chunk_s)
    )
    if start_ms is not None:
        q = q.where(TradeChunk.ts >= start_ms)
    if end_ms is not None:
        q = q.where(TradeChunk.ts < end_ms)
    rows = session.execute(q.order_by(TradeChunk.ts)).all()
    cols = [*CHUNK_COUNT_COLUMNS, "score"]
    if not rows:
        return pd.DataFrame(columns=cols, index=pd.DatetimeIndex([], tz="UTC", name="time"), dtype=float)
    values = np.array([tuple(r)[1:] for r in rows], dtype=float)
    index = pd.DatetimeIndex(pd.to_datetime([r[0] for r in rows], unit="ms", utc=True), name="time")
    return pd.DataFrame(values, index=index, columns=cols)


def store_stream_trades(
    session: Session,
    exchange: str,
    symbol: str,
    ids: np.ndarray,
    timestamp: np.ndarray,
    price: np.ndarray,
    amount: np.ndarray,
    is_buy: np.ndarray,
) -> int:
    """Insert raw trades (a trade already stored is skipped)."""
    if len(ids) == 0:
        return 0
    rows = [
        {"exchange": exchange, "symbol": symbol, "trade_id": i, "ts": t, "price": p, "amount": a, "is_buy": b}
        for i, t, p, a, b in zip(
            np.asarray(ids).tolist(),
            np.asarray(timestamp).tolist(),
            np.asarray(price, float).tolist(),
            np.asarray(amount, float).tolist(),
            np.asarray(is_buy, bool).tolist(),
            strict=True,
        )
    ]
    stmt = _insert(session)(StreamTrade).on_conflict_do_nothing(index_elements=["exchange", "symbol", "trade_id"])
    session.execute(stmt, rows)
    return len(rows)


def prune_stream_data(
    session: Session, *, chunks_before_ms: int | None, trades_before_ms: int | None
) -> tuple[int, int]:
    """Delete chunks and raw trades older than the given times; returns (chunks, trades) deleted."""
    n_chunks = n_trades = 0
    if chunks_before_ms is not None:
        n_chunks = int(session.execute(delete(TradeChunk).where(TradeChunk.ts < chunks_before_ms)).rowcount or 0)
    if trades_before_ms is not None:
        n_trades = int(session.execute(delete(StreamTrade).where(StreamTrade.ts < trades_before_ms)).rowcount or 0)
    return n_chunks, n_trades
