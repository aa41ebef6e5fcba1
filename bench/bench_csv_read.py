"""Strict CSV reading: a 2.4 M-row candle file through each reader of user CSVs.

Every user CSV (candles, detector series, events) goes through one strict reader
(encoding, header, ragged rows, values named by file/line/column). This measures
what that strictness costs on a large file. Peer, in the same run: a plain
``pd.read_csv`` of the same file with no checks at all (numbers parsed by the C
engine, nothing validated), which is the floor any checking reader sits on.

    python bench/bench_csv_read.py [--rows 2400000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from backtest.events import read_events_csv
from detectors.io import read_series_csv
from storage.candle_csv import read_candle_csv, write_candle_csv


def make_candles(rows: int) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.002, rows)))
    idx = pd.date_range("2000-01-01", periods=rows, freq="1min", tz="UTC")
    return pd.DataFrame(
        {"open": close, "high": close * 1.001, "low": close * 0.999, "close": close, "volume": rng.uniform(1, 9, rows)},
        index=idx,
    )


def make_events(path: Path, rows: int) -> None:
    rng = np.random.default_rng(1)
    ts = pd.date_range("2000-01-01", periods=rows, freq="1min", tz="UTC").as_unit("ms").asi8
    pd.DataFrame(
        {
            "timestamp": ts,
            "score": rng.normal(size=rows),
            "detector": "zscore",
            "symbol": "BTC/USDT",
            "severity": rng.choice(["low", "medium", "high"], rows),
        }
    ).to_csv(path, index=False)


def median_time(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=2_400_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        candles = Path(tmp) / "c.csv"
        events = Path(tmp) / "e.csv"
        write_candle_csv(make_candles(args.rows), candles)
        make_events(events, args.rows)
        mb = candles.stat().st_size / 1e6
        rows = {
            "storage.candle_csv.read_candle_csv": median_time(lambda: read_candle_csv(candles), args.repeat),
            "detectors.io.read_series_csv": median_time(lambda: read_series_csv(candles), args.repeat),
            "peer: pd.read_csv, no checks": median_time(lambda: pd.read_csv(candles), args.repeat),
        }
        ev = median_time(lambda: read_events_csv(events), args.repeat)
        ev_peer = median_time(lambda: pd.read_csv(events), args.repeat)
    print(f"candles: rows={args.rows} ({mb:.0f} MB), median of {args.repeat}")
    for name, secs in rows.items():
        print(f"  {name:40s} {secs:6.2f} s  ({args.rows / secs:,.0f} rows/s)")
    print(f"events: rows={args.rows}, median of {args.repeat}")
    print(f"  {'backtest.events.read_events_csv':40s} {ev:6.2f} s  ({args.rows / ev:,.0f} rows/s)")
    print(f"  {'peer: pd.read_csv, no checks':40s} {ev_peer:6.2f} s  ({args.rows / ev_peer:,.0f} rows/s)")


if __name__ == "__main__":
    main()
