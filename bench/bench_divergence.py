"""Scoring many asset groups at once: ``divergence.score_batch`` versus one ``score`` call per venue.

    python bench/bench_divergence.py [--groups 200] [--venues 3] [--bars 500] [--repeat 3]

A synthetic venue market (``feeds.synthetic_venues``) of ``--groups`` assets on ``--venues``
venues, each frame carrying its peers (what the live cycle hands the detector), ``--bars``
of history per frame. Timed: the batched call the cycle makes for the newest bar of every
venue (one vectorised pass over all groups), and the peer it replaces, scoring every frame
on its own and keeping its last score. Both give the same numbers (checked).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from detectors.divergence import DivergenceDetector  # noqa: E402
from detectors.groups import attach_peers  # noqa: E402
from feeds.synthetic_venues import generate_venue_market  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--groups", type=int, default=200)
    ap.add_argument("--venues", type=int, default=3)
    ap.add_argument("--bars", type=int, default=500)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    venues = ("binance", "okx", "kraken", "coinbase", "bybit", "kucoin")[: args.venues]
    market = generate_venue_market(args.groups, venues, days=args.bars / 24 + 1, timeframe="1h", seed=1)
    frames = {}
    for members in market.groups.values():
        frames.update(attach_peers({m: market.candles[m].iloc[-args.bars :] for m in members}))
    det = DivergenceDetector()
    best_batch = best_loop = float("inf")
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        batch = det.score_batch(frames, last_n=1)
        best_batch = min(best_batch, time.perf_counter() - t0)
        t0 = time.perf_counter()
        loop = {k: det.score(f).iloc[-1:] for k, f in frames.items()}
        best_loop = min(best_loop, time.perf_counter() - t0)
    np.testing.assert_allclose(
        [batch[k].iat[0] for k in frames], [loop[k].iat[0] for k in frames], rtol=1e-9, equal_nan=True
    )
    load = os.getloadavg()[0]
    print(f"{len(frames)} venue frames ({args.groups} groups x {args.venues} venues), {args.bars} bars each")
    print(f"load average {load:.2f}")
    print(f"| score_batch (one pass) | {best_batch * 1000:.1f} ms |")
    print(f"| score per frame (loop) | {best_loop * 1000:.1f} ms |")
    print(f"| speed-up | x{best_loop / best_batch:.1f} |")


if __name__ == "__main__":
    main()
