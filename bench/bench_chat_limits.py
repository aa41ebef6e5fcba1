"""Memory and time of one chat backtest on a symbol with 2.4 M one-minute bars, bounded and unbounded.

Issue 17 measured ``/backtest BIG/USDT fixed_hold 3650d`` at 163 s and 238 MB -> 4.1 GB. This
builds the same situation (SQLite, 2.4 M 1m bars of BIG/USDT ending now, an event every 1,200
bars), then runs, each in a fresh process so peaks do not mix:

- ``unbounded``: what the chat did before the bounds, ``backtest_symbol(period=None)`` (the
  alert's button) and with ``period="3650d"`` (the command) loading the whole history;
- ``chat``: the chat's runner (``bot.runtime.compose.make_backtest_runner``) as the button calls
  it (no period: the 90-day default) and as the command does with ``3650d`` (capped at
  ``CHAT_LIMITS.backtest_max_bars``);
- ``chart``: ``/chart BIG/USDT 90d`` (the newest ``CHAT_LIMITS.chart_max_bars`` bars, drawn);
- ``chat2``: two chat backtests at once (``3650d``), what the gate lets run together.

Reported: wall time, resident memory before the run and the peak during it (``ru_maxrss``).

    python bench/bench_chat_limits.py [--bars 2400000] [--db /tmp/vigil-bench-chat.db] [--max-bars N --cases chat]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

SYMBOL = "BIG/USDT"


def build(db: Path, bars: int) -> None:
    from storage.candles import candle_count, upsert_candles
    from storage.db import open_database
    from storage.events import NewEvent, insert_events
    from storage.watchlist import add_watch

    url = f"sqlite:///{db}"
    _engine, factory = open_database(url)
    with factory() as s:
        if candle_count(s, "binance") >= bars:
            return
    end = pd.Timestamp.now(tz="UTC").floor("min") - pd.Timedelta(minutes=1)
    idx = pd.date_range(end=end, periods=bars, freq="1min", tz="UTC")
    rng = np.random.default_rng(0)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.0005, bars)))
    open_ = np.r_[close[0], close[:-1]]
    frame = pd.DataFrame(
        {
            "open": open_,
            "high": np.maximum(open_, close) * 1.0003,
            "low": np.minimum(open_, close) * 0.9997,
            "close": close,
            "volume": rng.uniform(1, 9, bars),
        },
        index=idx,
    )
    t0 = time.perf_counter()
    with factory.begin() as s:
        add_watch(s, "binance", SYMBOL, "1m")
        upsert_candles(s, "binance", SYMBOL, "1m", frame)
        ts = idx[100::1200].as_unit("ms").asi8
        insert_events(
            s, [NewEvent("binance", SYMBOL, "1m", "zscore", int(t), 9.0, 4.0, severity="high") for t in ts]
        )
    print(f"built {db}: {bars} bars, {len(ts)} events in {time.perf_counter() - t0:.0f} s", file=sys.stderr)


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run_one(db: Path, mode: str, period: str | None, max_bars: int | None = None) -> dict[str, object]:
    """In this process: one backtest, with memory before and at peak."""
    import bot.telegram.limits as limits
    from backtest.service import backtest_symbol
    from bot.runtime.compose import make_backtest_runner
    from core.config import default_config
    from storage.db import open_database

    if max_bars is not None:
        limits.CHAT_LIMITS = limits.ChatLimits(backtest_max_bars=max_bars)

    url = f"sqlite:///{db}"
    cfg = default_config(database={"url": url})
    _engine, factory = open_database(url, migrate=False)
    runner = make_backtest_runner(cfg, factory)
    assert runner is not None
    before = _rss_mb()
    t0 = time.perf_counter()
    if mode == "chart":  # /chart SYMBOL 90d: the newest CHAT_LIMITS.chart_max_bars bars, drawn
        import asyncio
        from datetime import timedelta

        from bot.runtime.compose import build_service

        service = build_service(cfg, factory, backtests=False)
        png = asyncio.run(service.chart(SYMBOL, timedelta(days=90), max_bars=limits.CHAT_LIMITS.chart_max_bars))
        bars = limits.CHAT_LIMITS.chart_max_bars if png else 0
    elif mode == "chat2":  # two chats at once: what the gate lets run (CHAT_LIMITS.backtests_running = 2)
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(2) as pool:
            texts = list(pool.map(lambda _i: runner(SYMBOL, None, period)[0], range(2)))
        bars = sum(int(t.split("UTC, ")[1].split(" bars")[0]) for t in texts)
    elif mode == "unbounded":
        result = backtest_symbol(factory, exchange="binance", symbol=SYMBOL, timeframe="1m", period=period)
        bars = len(result.index)
    else:
        text, _png = runner(SYMBOL, None, period)
        bars = int(text.split("UTC, ")[1].split(" bars")[0])
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"mode": mode, "period": period, "bars": bars, "seconds": seconds, "rss_before_mb": before, "peak_mb": peak}


CASES = (
    ("chat", "-"),
    ("chat", "3650d"),
    ("chart", "90d"),
    ("chat2", "3650d"),
    ("unbounded", "-"),
    ("unbounded", "3650d"),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=2_400_000)
    parser.add_argument("--db", type=Path, default=Path("/tmp/vigil-bench-chat.db"))
    parser.add_argument("--max-bars", type=int, help="the chat's cap for this run (default: CHAT_LIMITS)")
    parser.add_argument("--cases", default="all", help="'all', or 'chat' (the bounded runs only)")
    parser.add_argument("--one", nargs=2, metavar=("MODE", "PERIOD"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        mode, period = args.one
        print(json.dumps(run_one(args.db, mode, None if period == "-" else period, args.max_bars)))
        return
    build(args.db, args.bars)
    rows = []
    cap = ["--max-bars", str(args.max_bars)] if args.max_bars else []
    for mode, period in CASES if args.cases == "all" else CASES[:4]:
        out = subprocess.run(
            [sys.executable, __file__, "--db", str(args.db), *cap, "--one", mode, period],
            capture_output=True,
            text=True,
            check=True,
        )
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        r = rows[-1]
        grew = float(r["peak_mb"]) - float(r["rss_before_mb"])  # type: ignore[arg-type]
        print(
            f"{r['mode']:9} period {str(r['period']):6} {r['bars']:>9} bars {r['seconds']:7.1f} s  "
            f"RSS {r['rss_before_mb']:6.0f} MB -> peak {r['peak_mb']:6.0f} MB (+{grew:.0f})"
        )


if __name__ == "__main__":
    main()
