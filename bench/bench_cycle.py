"""One cycle of the main job for 500 symbols: fetch, load, score, store, dispatch.

    /work/venv/bin/python bench/bench_cycle.py [--symbols 500] [--cycles 3] [--concurrency 16]

Everything is real except the exchange: ``feeds.exchange.ExchangeFeed`` (ccxt
async) talks HTTP to ``tests.fakes.binance.FakeBinance`` on 127.0.0.1, with
ccxt's rate limiter on (1 ms interval) and ``max_concurrency`` requests in
flight; storage is a fresh SQLite file; the detectors are ``zscore``,
``lstm_forecaster``, ``lstm_autoencoder`` and ``pump_dump``; the system is built
by ``bot.runtime.compose.compose`` exactly as ``vigil run`` builds it; alerts go
through the dispatcher the runtime uses without a Telegram token (console sink +
PNG charts; the console text goes to /dev/null so the terminal does not distort
the figure).

Set-up (not timed): ``generate_market(N, days=30, timeframe="1h")``, served
without its ``social_volume`` column; one cycle at the close of bar ``-cycles``
backfills ``history_bars`` (500) bars per symbol and trains the models. The
models are trained SMALL (2 epochs, pump_dump on 8 x 600 labelled bars) to
keep set-up short: inference cost does not depend on epochs.

Timed: ``--cycles`` successive cycles, each at the close of the next bar (one
new closed bar per symbol: ``N`` kline requests), with the per-stage times the
runtime records in ``CycleReport.stage_s``. Baseline in the same run: for the
last cycle's frames, each detector's ``score_batch`` called once per symbol
(``N`` calls per detector) against one call for all symbols.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import logging
import os
import pstats
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rich.console import Console  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from bot.runtime.compose import compose  # noqa: E402
from bot.runtime.cycle import CycleReport, Runtime, watched_entries  # noqa: E402
from bot.runtime.detector_pool import DetectorPool  # noqa: E402
from core.config import default_config  # noqa: E402
from feeds.synthetic import generate_market  # noqa: E402
from storage.db import open_database  # noqa: E402
from storage.models import Candle, Delivery  # noqa: E402
from tests.fakes.binance import FakeBinance  # noqa: E402

STEP = 3_600_000
SMALL_TRAINING = {"lstm_forecaster": {"epochs": 2}, "lstm_autoencoder": {"epochs": 2}}


def _maxrss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _reset_peak() -> bool:
    """Reset the kernel's peak-RSS mark (Linux >= 4.0), so ru_maxrss covers only what follows."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def _uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


def _sent(factory) -> int:
    with factory() as s:
        return int(s.scalar(select(func.count()).select_from(Delivery).where(Delivery.status == "sent")) or 0)


def _charts(chart_dir: Path) -> int:
    return len(list(chart_dir.glob("*.png"))) if chart_dir.exists() else 0


def _stages(report: CycleReport) -> str:
    return ", ".join(f"{k} {v:.2f}s" for k, v in report.stage_s.items())


def _baseline(runtime: Runtime, pool: DetectorPool, now_ms: int) -> None:
    """Each detector: one ``score_batch`` over all symbols vs one call per symbol, same frames."""
    with runtime.factory() as s:
        entries = watched_entries(s, runtime.cfg, "1h")
    frames = runtime._load_frames(entries, now_ms)
    print(f"\nbaseline: scoring the last cycle's {len(frames)} frames (last_n=1), outside the cycle")
    print(f"  {'detector':<18} {'one call':>10} {'one call per symbol':>22} {'ratio':>7}")
    total_batch = total_loop = 0.0
    for name, detector, _version in pool.active():
        t0 = time.perf_counter()
        detector.score_batch(frames, last_n=1)
        batch_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        for key, frame in frames.items():
            detector.score_batch({key: frame}, last_n=1)
        loop_s = time.perf_counter() - t0
        total_batch += batch_s
        total_loop += loop_s
        print(f"  {name:<18} {batch_s:>9.2f}s {loop_s:>21.2f}s {loop_s / batch_s:>6.1f}x")
    print(f"  {'all four':<18} {total_batch:>9.2f}s {total_loop:>21.2f}s {total_loop / total_batch:>6.1f}x")


async def main(args: argparse.Namespace) -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    t0 = time.perf_counter()
    market = generate_market(args.symbols, days=30, timeframe="1h", seed=args.seed)
    frames = {s: f.drop(columns=["social_volume"], errors="ignore") for s, f in market.candles.items()}
    index = next(iter(frames.values())).index
    end = int(index[-1].value // 1_000_000) + STEP  # close of the last served bar
    gen_s = time.perf_counter() - t0
    print(f"market: {len(frames)} symbols x {len(index)} hourly bars (seed {args.seed}), {gen_s:.1f}s")

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        chart_dir = tmp / "charts"
        async with FakeBinance(frames) as fake:
            cfg = default_config(
                database={"url": f"sqlite:///{tmp / 'vigil.db'}"},
                exchanges={"binance": {"ccxt_config": fake.ccxt_config(), "max_concurrency": args.concurrency}},
                watchlist=[{"exchange": "binance", "symbol": s, "timeframe": "1h"} for s in frames],
                alerts={"chart_dir": str(chart_dir)},
            )
            _engine, factory = open_database(cfg.database.url)
            with open(os.devnull, "w") as devnull:
                system = await compose(
                    cfg,
                    factory,
                    model_root=tmp / "models",
                    detector_options={
                        "param_overrides": SMALL_TRAINING,
                        "labelled_symbols": 8,
                        "labelled_bars": 600,
                    },
                    console=Console(file=devnull),
                )
                try:
                    await _run(args, system.runtime, system.detectors, fake, factory, chart_dir, end)
                finally:
                    await system.aclose()
                    _engine.dispose()


async def _run(args, runtime, pool, fake, factory, chart_dir: Path, end: int) -> None:
    cfg = runtime.cfg
    print(
        f"config: history_bars {cfg.scheduler.history_bars}, max_concurrency {args.concurrency}, "
        f"ccxt rateLimit {cfg.exchanges['binance'].ccxt_config['rateLimit']} ms (limiter on), "
        f"alerts min_severity {cfg.alerts.min_severity}, cooldown {cfg.alerts.cooldown_minutes} min, console sink + PNG"
    )
    setup_now = end - args.cycles * STEP
    t0 = time.perf_counter()
    report = await runtime.run_cycle("1h", now_ms=setup_now)
    setup_s = time.perf_counter() - t0
    with factory() as s:
        candles = s.scalar(select(func.count()).select_from(Candle))
    print(
        f"set-up cycle (backfill + training, models trained SMALL: 2 epochs, pump_dump on 8x600 labelled bars; "
        f"inference cost does not depend on epochs): {setup_s:.1f}s, {candles} candles stored, "
        f"{report.new_events} events, {report.alerts} alerts, {len(report.errors)} errors, "
        f"detectors ready: {[n for n, _d, _v in pool.active()]}"
    )
    print(f"  stages: {_stages(report)}")
    print(f"ru_maxrss after set-up (includes training): {_maxrss_mib():.0f} MiB")
    reset = _reset_peak()
    print(f"peak-RSS mark reset before the timed cycles: {reset} (ru_maxrss now {_maxrss_mib():.0f} MiB)")
    print(f"uptime before timed cycles: {_uptime()}")

    profiler = cProfile.Profile() if args.profile else None
    totals = []
    now_ms = setup_now
    for i in range(args.cycles):
        now_ms += STEP
        requests_before = fake.requests["/api/v3/klines"]
        sent_before, charts_before = _sent(factory), _charts(chart_dir)
        if profiler is not None and i == args.cycles - 1:
            profiler.enable()
        t0 = time.perf_counter()
        report = await runtime.run_cycle("1h", now_ms=now_ms)
        wall = time.perf_counter() - t0
        if profiler is not None:
            profiler.disable()
        totals.append(wall)
        sent = _sent(factory) - sent_before
        charts = _charts(chart_dir) - charts_before
        requests = fake.requests["/api/v3/klines"] - requests_before
        no_dispatch = report.duration_s - report.stage_s.get("dispatch", 0.0)
        print(
            f"\ncycle {i + 1} (until {now_ms}): {wall:.2f}s wall, {report.duration_s:.2f}s in CycleReport; "
            f"{report.symbols} symbols, {requests} kline requests, {report.candles_added} candles added, "
            f"{report.new_events} new events, {report.alerts} alerts queued, {sent} sent ({charts} PNG charts), "
            f"{len(report.errors)} errors"
        )
        print(f"  stages: {_stages(report)}")
        print(f"  cycle excluding dispatch (duration_s - stage_s['dispatch']): {no_dispatch:.2f}s")
        print(f"  ru_maxrss so far: {_maxrss_mib():.0f} MiB")
    print(f"\nuptime after timed cycles: {_uptime()}")
    print(f"timed cycles: {', '.join(f'{t:.2f}s' for t in totals)} (aim: under 10 s)")
    print(f"peak memory of the timed cycles (ru_maxrss since the reset): {_maxrss_mib():.0f} MiB")

    _baseline(runtime, pool, now_ms)
    if profiler is not None:
        print("\ncProfile of the last timed cycle (cumulative, top 30):")
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument("--cycles", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("--profile", action="store_true", help="cProfile the last timed cycle")
    asyncio.run(main(parser.parse_args()))
