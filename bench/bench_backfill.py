"""Backfill throughput against the local fake Binance, and what ccxt's own paginate returns.

    python bench/bench_backfill.py [--bars 20000]

Measures, in one run and on the same fake server (the real ccxt binance
client, HTTP over loopback, 1000 bars per request):

* ``ExchangeFeed.fetch_closed_candles`` over ``--bars`` hourly bars;
* ``sync_candles`` of the same range into a fresh SQLite file (fetch + store);
* the baseline: ``fetch_ohlcv(..., params={"paginate": True})``, ccxt's own
  pagination, which stops after ``paginationCalls`` (10) requests.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pandas as pd  # noqa: E402

from core.config import ExchangeConfig  # noqa: E402
from feeds.backfill import sync_candles  # noqa: E402
from feeds.exchange import ExchangeFeed  # noqa: E402
from storage.db import open_database  # noqa: E402
from tests.fakes.binance import FakeBinance, make_candles  # noqa: E402

H = 3_600_000


async def main(bars: int) -> None:
    candles = make_candles(periods=bars)
    t0 = int(candles.index[0].value // 1_000_000)
    now = t0 + bars * H
    async with FakeBinance({"BTC/USDT": candles}) as fake:
        cfg = ExchangeConfig(ccxt_config=fake.ccxt_config())
        async with ExchangeFeed("binance", cfg) as feed:
            start = time.perf_counter()
            got = await feed.fetch_closed_candles("BTC/USDT", "1h", t0, now_ms=now)
            fetch_s = time.perf_counter() - start
            requests = fake.requests["/api/v3/klines"]

            with tempfile.TemporaryDirectory() as tmp:
                _engine, factory = open_database(f"sqlite:///{tmp}/bench.db")
                start = time.perf_counter()
                result = await sync_candles(feed, factory, "BTC/USDT", "1h", since_ms=t0, now_ms=now)
                sync_s = time.perf_counter() - start
                _engine.dispose()

            before = fake.requests["/api/v3/klines"]
            start = time.perf_counter()
            raw = await feed.client.fetch_ohlcv("BTC/USDT", "1h", since=t0, params={"paginate": True})
            ccxt_s = time.perf_counter() - start
            ccxt_requests = fake.requests["/api/v3/klines"] - before
    ccxt_rows = len({r[0] for r in raw if r[0] < now})
    rows = [
        ("ExchangeFeed.fetch_closed_candles", len(got), requests, fetch_s),
        ("sync_candles (fetch + SQLite upsert per page)", result.rows_added, None, sync_s),
        ("baseline: ccxt fetch_ohlcv paginate=True", ccxt_rows, ccxt_requests, ccxt_s),
    ]
    print(f"{bars} hourly bars served by FakeBinance (1000 per request)")
    print("| what | bars returned | requests | time | bars/s |")
    print("|---|---|---|---|---|")
    for name, n, req, secs in rows:
        print(f"| {name} | {n} | {req if req is not None else '-'} | {secs:.2f} s | {n / secs:,.0f} |")
    assert len(got) == bars and pd.Index(got.index).is_monotonic_increasing


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--bars", type=int, default=20_000)
    asyncio.run(main(parser.parse_args().bars))
