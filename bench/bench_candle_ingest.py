"""Candle ingest: 1,000,000 candles into a fresh SQLite file (aim: under 10 s).

Baseline, in the same run: the textbook SQLAlchemy Core upsert
(``session.execute(insert(...).on_conflict_do_update(...), list_of_dicts)``),
which is what a first implementation would write.

    python bench/bench_candle_ingest.py [--rows 1000000] [--postgres URL]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy.dialects import sqlite

from storage.candles import CANDLE_COLUMNS, candle_count, upsert_candles
from storage.db import open_database
from storage.models import Candle


def make_frame(rows: int) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.002, rows)))
    idx = pd.date_range("2000-01-01", periods=rows, freq="1min", tz="UTC")
    return pd.DataFrame(
        {"open": close, "high": close * 1.001, "low": close * 0.999, "close": close, "volume": rng.uniform(1, 9, rows)},
        index=idx,
    )


def bench_vigil(url: str, frame: pd.DataFrame) -> float:
    _engine, factory = open_database(url)
    t0 = time.perf_counter()
    with factory.begin() as s:
        upsert_candles(s, "bench", "BTC/USDT", "1m", frame)
    elapsed = time.perf_counter() - t0
    with factory() as s:
        assert candle_count(s, "bench") == len(frame)
    return elapsed


def bench_core_dicts(url: str, frame: pd.DataFrame) -> float:
    _engine, factory = open_database(url)
    t0 = time.perf_counter()
    key = {"exchange": "bench", "symbol": "BTC/USDT", "timeframe": "1m"}
    times = frame.index.as_unit("ms").asi8.tolist()
    values = frame[list(CANDLE_COLUMNS)].to_numpy().tolist()
    rows = [
        {**key, "ts": int(t), **dict(zip(CANDLE_COLUMNS, v, strict=True))} for t, v in zip(times, values, strict=True)
    ]
    stmt = sqlite.insert(Candle.__table__)
    stmt = stmt.on_conflict_do_update(
        index_elements=["exchange", "symbol", "timeframe", "ts"], set_={c: stmt.excluded[c] for c in CANDLE_COLUMNS}
    )
    with factory.begin() as s:
        s.execute(stmt, rows)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    frame = make_frame(args.rows)
    with tempfile.TemporaryDirectory() as tmp:
        ours = bench_vigil(f"sqlite:///{Path(tmp) / 'a.db'}", frame)
        again = bench_vigil(f"sqlite:///{Path(tmp) / 'a.db'}", frame)  # all conflicts: idempotent re-import
        base = bench_core_dicts(f"sqlite:///{Path(tmp) / 'b.db'}", frame)
    print(f"rows={args.rows}")
    print(f"vigil upsert_candles, fresh file:     {ours:6.2f} s  ({args.rows / ours:,.0f} rows/s)")
    print(f"vigil upsert_candles, same rows again: {again:6.2f} s")
    print(f"baseline Core insert with dict rows:  {base:6.2f} s  ({base / ours:.1f}x slower)")


if __name__ == "__main__":
    main()
