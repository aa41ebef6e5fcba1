"""Chunk features at every chunk close for many symbols: incremental ``ChunkBook`` vs recomputing in pandas.

    python bench/bench_chunk_book.py [--symbols 200] [--minutes 20] [--chunk 15] [--window 20]

Replays a synthetic tape (``feeds.synthetic_trades``) chunk by chunk. Incremental: every trade is
appended once and each chunk close is one ``ChunkBook.close_until`` for all symbols (the stream
job's path). Baseline, same tape, same run: at each close, ``trades_to_chunks`` on each symbol's
trades of the last ``window`` chunks (the least a batch recomputation needs to get the newest
row's rolling mean and std). Both give the same newest rows (checked here on every close).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from detectors.pump.features import LA_MORGIA_COLUMNS, trades_to_chunks  # noqa: E402
from detectors.pump.live_chunks import ChunkBook  # noqa: E402
from feeds.synthetic_trades import generate_trades  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--symbols", type=int, default=200)
    ap.add_argument("--minutes", type=float, default=20)
    ap.add_argument("--chunk", type=int, default=15)
    ap.add_argument("--window", type=int, default=20)
    args = ap.parse_args()
    tape = generate_trades(args.symbols, minutes=args.minutes, seed=900)
    chunk_ms = args.chunk * 1000
    trades = tape.trades
    ts = trades["timestamp"].to_numpy()
    per_symbol = {s: tape.for_symbol(s) for s in tape.symbols}
    book = ChunkBook(chunk_ms, args.window, history=40, steps=8)
    t_inc = t_base = 0.0
    closes = checked = 0
    start = tape.start_ms + args.window * chunk_ms  # the baseline needs a full window behind it
    for end in range(tape.start_ms + chunk_ms, tape.end_ms + 1, chunk_ms):
        part = trades.iloc[np.searchsorted(ts, end - chunk_ms) : np.searchsorted(ts, end)]
        t0 = time.perf_counter()
        for symbol, rows in part.groupby("symbol", sort=False, observed=True):
            book.add_trades(
                str(symbol),
                rows["timestamp"].to_numpy(),
                rows["price"].to_numpy(),
                rows["amount"].to_numpy(),
                (rows["side"] == "buy").to_numpy(),
            )
        closed = book.close_until(end)
        t_inc += time.perf_counter() - t0
        if end <= start:
            continue
        closes += 1
        newest = {s: f for s, f in zip(closed.symbols, closed.features, strict=True)}
        t0 = time.perf_counter()
        rows = {}
        for symbol, frame in per_symbol.items():
            t = frame["timestamp"].to_numpy()
            window = frame.iloc[np.searchsorted(t, end - args.window * chunk_ms) : np.searchsorted(t, end)]
            if len(window):
                rows[symbol] = trades_to_chunks(window, f"{args.chunk}s", window=args.window).iloc[-1]
        t_base += time.perf_counter() - t0
        for symbol, row in rows.items():  # same newest row whenever every chunk of the window had trades
            counts = book.recent_counts(symbol, args.window)
            if symbol in newest and len(counts) == args.window and (counts[:, 1] > 0).all():
                np.testing.assert_allclose(newest[symbol], row[LA_MORGIA_COLUMNS].to_numpy(float), atol=1e-5)
                checked += 1
    n_trades = int((ts >= start - chunk_ms).sum())
    print(f"{args.symbols} symbols, {closes} chunk closes, {n_trades} trades; load {os.getloadavg()[0]:.1f}")
    print(f"incremental ChunkBook: {1000 * t_inc / (closes + args.window):.2f} ms per close (appends + close)")
    print(f"baseline trades_to_chunks on each symbol's last window: {1000 * t_base / closes:.1f} ms per close")
    print(f"ratio {t_base / closes / (t_inc / (closes + args.window)):.0f}x; rows cross-checked: {checked}")


if __name__ == "__main__":
    main()
