"""Synthetic market generation speed: 500 symbols x 90 days of 1h bars (aim: a few seconds).

Peer, in the same run: the same market built one symbol at a time (500 calls
of ``generate_market(1, ...)``), i.e. what vectorizing across symbols saves.

    python bench/bench_synthetic.py [--symbols 500] [--days 90] [--timeframe 1h]
"""

from __future__ import annotations

import argparse
import time

from feeds.synthetic import generate_market


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument("--days", type=float, default=90)
    parser.add_argument("--timeframe", default="1h")
    args = parser.parse_args()

    generate_market(2, 5, args.timeframe, seed=0)  # warm imports and caches
    t0 = time.perf_counter()
    market = generate_market(args.symbols, args.days, args.timeframe, seed=0)
    vectorized = time.perf_counter() - t0
    bars = sum(len(f) for f in market.candles.values())
    print(
        f"generate_market({args.symbols}, {args.days:g}, {args.timeframe!r}): {vectorized:.2f} s, "
        f"{bars:,} candles, {len(market.labels)} labels, {bars / vectorized:,.0f} candles/s"
    )

    t0 = time.perf_counter()
    for i in range(args.symbols):
        generate_market(1, args.days, args.timeframe, seed=i)
    per_symbol = time.perf_counter() - t0
    print(f"peer: {args.symbols} x generate_market(1, ...): {per_symbol:.2f} s ({per_symbol / vectorized:.1f}x slower)")


if __name__ == "__main__":
    main()
