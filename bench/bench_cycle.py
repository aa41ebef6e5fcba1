"""The main job's cycle end to end: fetch, store, score, store events, send alerts (texts, then charts).

    python bench/bench_cycle.py [--symbols 500] [--timeframe 1h] [--cycles 3] [--alerts 20] [--telegram]
                                [--models DIR] [--profile] [--per-symbol-baseline]

Everything is real except the exchange and Telegram: ``vigil run``'s system is built by
``bot.runtime.compose.compose``; candles come through the real ccxt client from
``tests.fakes.binance.FakeBinance``, served by a **separate process** on 127.0.0.1 (an
exchange is another machine: its CPU must not count as the cycle's, and in one process
its handlers would hold the GIL the cycle needs); storage is a fresh SQLite file; the
detectors are ``zscore``, ``lstm_forecaster``, ``lstm_autoencoder`` and ``pump_dump``.
Alerts go to the console sink (text to /dev/null, charts as PNG files) or, with
``--telegram``, through python-telegram-bot to ``tests.fakes.telegram.FakeTelegram`` (a
private chat), which timestamps every message it receives.

Set-up (not timed): a clean synthetic market (``generate_market(..., anomaly_rate=0)``,
no social volume) of ``history_bars`` + ``cycles`` + 50 bars; one cycle backfills the
history and, unless ``--models DIR`` already holds them, trains the models SMALL (2 epochs,
pump_dump on 8 x 600 labelled bars; inference cost does not depend on epochs) and saves
them there (Keras + ONNX). ``VIGIL_ONNX=0`` serves them through Keras instead.

Alerts: the small training makes ``pump_dump`` fire on most symbols (its alert budget is
another issue's), which would measure 500 alerts per cycle rather than a cycle. So every
detector gets a global threshold override no score reaches, except ``zscore``, whose
override (20) only the planted spikes pass (they score 40-80, the rest of the market under
3): in each timed cycle ``--alerts`` symbols get a volume x 1e6, price x 2 bar at the
newest close. Every detector still scores every symbol.
``--alerts -1`` keeps the detectors' own thresholds (no overrides, no spikes).

Timed: ``--cycles`` cycles, each at the close of the next bar (one new bar per symbol), with
the stage times of ``CycleReport.stage_s``. With ``--telegram``: per alert, the delay from
the end of the fetch stage to its text at the fake Bot API, and from the text to its chart.
Peak RSS of the timed cycles is ``ru_maxrss`` after resetting the peak mark.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import logging
import multiprocessing
import os
import pstats
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

STEP = {"1m": 60_000, "5m": 300_000, "1h": 3_600_000}
SMALL_TRAINING = {"lstm_forecaster": {"epochs": 2}, "lstm_autoencoder": {"epochs": 2}}
DETECTORS = ("zscore", "lstm_forecaster", "lstm_autoencoder", "pump_dump")
HISTORY_BARS = 500
CHAT = 4242


def _market(args: argparse.Namespace) -> tuple[dict[str, pd.DataFrame], int]:
    """The served candles (spikes planted) and the close of the last served bar."""
    from feeds.synthetic import generate_market

    step = STEP[args.timeframe]
    bars = HISTORY_BARS + args.cycles + 50
    market = generate_market(
        args.symbols,
        days=bars * step / 86_400_000,
        timeframe=args.timeframe,
        seed=args.seed,
        anomaly_rate=0,
        faults=False,
        **({"start": args.start} if getattr(args, "start", None) else {}),
    )
    frames = {s: f[["open", "high", "low", "close", "volume"]].copy() for s, f in market.candles.items()}
    symbols = sorted(frames)
    n_bars = len(frames[symbols[0]])
    if args.alerts > 0:  # timed cycle i scores bar n - cycles + i (the newest close at that cycle)
        for i in range(args.cycles):
            row = n_bars - args.cycles + i
            for k in range(args.alerts):
                frame = frames[symbols[(i * args.alerts + k) % len(symbols)]]
                frame.iloc[row, frame.columns.get_loc("volume")] *= 1e6
                for col in ("close", "high"):
                    frame.iloc[row, frame.columns.get_loc(col)] *= 2.0
    end = int(frames[symbols[0]].index[-1].value // 1_000_000) + step
    return frames, end


def _serve(args: argparse.Namespace, conn: Any) -> None:
    """The fake exchange's process: build the same market, serve it, answer request counts, stop on 'stop'."""
    from tests.fakes.binance import FakeBinance

    frames, _end = _market(args)

    async def main() -> None:
        async with FakeBinance(frames, timeframe=args.timeframe) as fake:
            conn.send(fake.ccxt_config())
            loop = asyncio.get_running_loop()
            while True:
                msg = await loop.run_in_executor(None, conn.recv)
                if msg == "stop":
                    return
                conn.send(fake.requests["/api/v3/klines"])

    asyncio.run(main())


def _maxrss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _reset_peak() -> bool:
    """Reset the kernel's peak-RSS mark (Linux >= 4.0), so ru_maxrss covers only what follows."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def _children_uss_mib(exclude: int) -> float:
    """Memory of this process's children but the fake exchange (the chart workers) that is theirs alone (USS), MiB."""
    try:
        import psutil
    except ImportError:
        return float("nan")
    kids = [c for c in psutil.Process().children(recursive=True) if c.pid != exclude]
    return sum(c.memory_full_info().uss for c in kids) / 2**20


def _uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


def _register_models(factory: Any, models: Path) -> list[str]:
    """Register models saved by an earlier run (``models/<name>/shared/v<k>``) in the fresh database."""
    from detectors.base import saved_detector_name
    from storage.model_records import register_model

    found = []
    for name in DETECTORS:
        versions = sorted((models / name / "shared").glob("v*"), key=lambda p: int(p.name[1:]))
        if not versions:
            continue
        path = versions[-1]
        meta = next(json.loads(f.read_text()) for f in path.glob("*.json") if "params" in json.loads(f.read_text()))
        with factory.begin() as s:
            register_model(
                s,
                detector=saved_detector_name(path),
                scope="shared",
                version=int(path.name[1:]),
                path=str(path),
                params=meta["params"],
            )
        found.append(name)
    return found


def _silence_noise(factory: Any, alerts: int) -> None:
    """Global threshold overrides: only the planted spikes alert (see the module docstring)."""
    if alerts < 0:
        return
    from storage.thresholds import set_threshold

    with factory.begin() as s:
        for name in DETECTORS:
            set_threshold(s, "", name, 20.0 if name == "zscore" else 1e12)


def _percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


async def main(args: argparse.Namespace) -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from rich.console import Console

    from bot.runtime.compose import compose
    from core.config import default_config
    from storage.db import open_database

    _frames, end = _market(args)
    step = STEP[args.timeframe]
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    server = ctx.Process(target=_serve, args=(args, child), daemon=True)
    server.start()
    ccxt_config = parent.recv()
    print(
        f"market: {args.symbols} symbols x {HISTORY_BARS + args.cycles + 50} {args.timeframe} bars (seed {args.seed}), "
        f"served by a separate process; VIGIL_ONNX={os.environ.get('VIGIL_ONNX', '1')}"
    )
    tg_cm: Any = None
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        models = Path(args.models) if args.models else tmp / "models"
        telegram: dict[str, Any] = {}
        if args.telegram:
            from tests.fakes.telegram import FakeTelegram

            tg_cm = FakeTelegram()
            tg = await tg_cm.start()
            telegram = {"token": tg.token, "base_url": tg.base_url, "base_file_url": tg.base_file_url}
            telegram["allowed_chat_ids"] = [CHAT]
        cfg = default_config(
            database={"url": f"sqlite:///{tmp / 'vigil.db'}"},
            exchanges={"binance": {"ccxt_config": ccxt_config, "max_concurrency": args.concurrency}},
            watchlist=[{"exchange": "binance", "symbol": s, "timeframe": args.timeframe} for s in sorted(_frames)],
            alerts={
                "chart_dir": str(tmp / "charts"),
                "cooldown_minutes": 0,
                **({"chart_workers": args.chart_workers} if args.chart_workers is not None else {}),
            },
            scheduler={"history_bars": HISTORY_BARS},
            telegram=telegram,
        )
        del _frames
        _engine, factory = open_database(cfg.database.url)
        registered = _register_models(factory, models) if models.exists() else []
        _silence_noise(factory, args.alerts)
        with open(os.devnull, "w") as devnull:
            system = await compose(
                cfg,
                factory,
                model_root=models,
                detector_options={"param_overrides": SMALL_TRAINING, "labelled_symbols": 8, "labelled_bars": 600},
                console=Console(file=devnull),
                with_application=False,
            )
            try:
                await _run(args, system, parent, factory, end, step, registered, tg_cm, server.pid)
            finally:
                await system.aclose()
                _engine.dispose()
                if tg_cm is not None:
                    await tg_cm.close()
                parent.send("stop")
                server.join(timeout=10)


async def _run(
    args, system, server, factory, end: int, step: int, registered: list[str], tg: Any, server_pid: int
) -> None:
    from bot.runtime.cycle import watched_entries

    runtime, pool = system.runtime, system.detectors
    dispatcher = system.dispatcher
    setup_now = end - args.cycles * step
    t0 = time.perf_counter()
    report = await runtime.run_cycle(args.timeframe, now_ms=setup_now)
    await _charts_done(dispatcher)
    setup_s = time.perf_counter() - t0
    served = {n: getattr(d, "served_by", "keras" if n != "zscore" else "-") for n, d, _v in pool.active()}
    print(
        f"set-up cycle: {setup_s:.1f}s (models {'loaded from ' + args.models if registered else 'trained SMALL'}), "
        f"{report.candles_added} candles, {report.new_events} events, {len(report.errors)} errors; served by {served}"
    )
    print(f"  stages: {_stages(report)}")
    print(f"ru_maxrss after set-up: {_maxrss_mib():.0f} MiB; peak mark reset: {_reset_peak()}")
    if hasattr(getattr(dispatcher, "charts", None), "warm"):
        dispatcher.charts.warm()
        await asyncio.sleep(3)  # the chart workers start as `vigil run` starts them: after the first cycle
    print(f"uptime before timed cycles: {_uptime()}")

    profiler = cProfile.Profile() if args.profile else None
    walls, text_lat, chart_lat = [], [], []
    now_ms = setup_now
    for i in range(args.cycles):
        now_ms += step
        requests_before = _requests(server)
        sent_before = len(tg.requests) if tg is not None else 0
        if profiler is not None and i == args.cycles - 1:
            profiler.enable()
        t0, m0 = time.perf_counter(), time.monotonic()
        report = await runtime.run_cycle(args.timeframe, now_ms=now_ms)
        wall = time.perf_counter() - t0
        if profiler is not None:
            profiler.disable()
        walls.append(wall)
        rss = _maxrss_mib()
        await _charts_done(dispatcher)
        print(
            f"\ncycle {i + 1}: {wall:.2f}s wall; {report.symbols} symbols, {_requests(server) - requests_before} kline "
            f"requests, {report.candles_added} candles added, {report.new_events} new events, {report.alerts} alerts, "
            f"{len(report.errors)} errors; ru_maxrss {rss:.0f} MiB, "
            f"chart workers (USS) {_children_uss_mib(server_pid):.0f} MiB"
        )
        print(f"  stages: {_stages(report)}")
        if tg is not None:
            # the end of the fetch stage (code before issue 19 has no fetched_at: cycle start + fetch stage)
            fetched = getattr(report, "fetched_at", None) or m0 + report.stage_s.get("fetch", 0.0)
            texts, charts = _arrivals(tg.requests[sent_before:])
            if fetched is not None:
                lat = [t - fetched for t in texts.values()]
                text_lat += lat
                print(
                    f"  texts at the fake Bot API after the fetch: first {min(lat, default=float('nan')):.3f}s, "
                    f"p95 {_percentile(lat, 95):.3f}s, last {max(lat, default=float('nan')):.3f}s ({len(lat)} texts)"
                )
            follow = [charts[k] - texts[k] for k in charts if k in texts]
            chart_lat += follow
            print(
                f"  charts after their text: p50 {_percentile(follow, 50):.3f}s, p95 {_percentile(follow, 95):.3f}s, "
                f"max {max(follow, default=float('nan')):.3f}s ({len(follow)} charts)"
            )
    print(f"\nuptime after timed cycles: {_uptime()}")
    print(
        f"timed cycles: {', '.join(f'{t:.2f}s' for t in walls)}; peak RSS of the timed cycles {_maxrss_mib():.0f} MiB"
    )
    if tg is not None:
        print(
            f"all cycles: text p95 {_percentile(text_lat, 95):.3f}s after the fetch ({len(text_lat)} alerts); "
            f"chart p95 {_percentile(chart_lat, 95):.3f}s, "
            f"max {max(chart_lat, default=float('nan')):.3f}s after its text"
        )
    if args.per_symbol_baseline:
        with runtime.factory() as s:
            entries = watched_entries(s, runtime.cfg, args.timeframe)
        _baseline(runtime._load_frames(entries, now_ms), pool)
    if profiler is not None:
        print("\ncProfile of the last timed cycle (cumulative, top 40):")
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(40)


async def _charts_done(dispatcher: Any) -> None:
    wait = getattr(dispatcher, "wait_charts", None)
    if wait is not None:
        await wait()


def _requests(server: Any) -> int:
    server.send("count")
    return int(server.recv())


def _arrivals(requests: list[Any]) -> tuple[dict[str, float], dict[str, float]]:
    """Arrival time (monotonic) of each alert's text and chart, keyed by symbol and bar."""
    texts, charts = {}, {}
    for r in requests:
        if r.outcome != "ok":
            continue
        if r.method == "sendMessage":
            texts[r.params["text"].split("\n")[0]] = r.at
        elif r.method == "sendPhoto" and "<b>" in r.params.get("caption", ""):  # before issue 19: one photo
            texts[r.params["caption"].split("\n")[0]] = r.at
            charts[r.params["caption"].split("<b>")[1].split("</b>")[0]] = r.at
        elif r.method == "sendPhoto":
            key = r.params.get("caption", "")
            charts[key] = r.at
    # a text's first line names the symbol; a chart's caption names exchange:symbol: match on the symbol
    by_symbol = {k.split("<b>")[1].split("</b>")[0]: v for k, v in texts.items() if "<b>" in k}
    chart_by_symbol = {(k.split(":", 1)[1].split(" ")[0] if ":" in k else k): v for k, v in charts.items()}
    return by_symbol, chart_by_symbol


def _stages(report: Any) -> str:
    return ", ".join(f"{k} {v:.3f}s" for k, v in report.stage_s.items())


def _baseline(frames: dict[str, pd.DataFrame], pool: Any) -> None:
    """Each detector: one ``score_batch`` over all symbols vs one call per symbol, same frames."""
    print(f"\nbaseline: scoring the last cycle's {len(frames)} frames (last_n=1), outside the cycle")
    print(f"  {'detector':<18} {'one call':>10} {'one call per symbol':>22} {'ratio':>7}")
    for name, detector, _version in pool.active():
        t0 = time.perf_counter()
        detector.score_batch(frames, last_n=1)
        batch_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        for key, frame in frames.items():
            detector.score_batch({key: frame}, last_n=1)
        loop_s = time.perf_counter() - t0
        print(f"  {name:<18} {batch_s:>9.3f}s {loop_s:>21.2f}s {loop_s / batch_s:>6.1f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument("--timeframe", choices=sorted(STEP), default="1h")
    parser.add_argument("--cycles", type=int, default=3)
    parser.add_argument("--alerts", type=int, default=20, help="planted alerts per timed cycle (-1: natural)")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("--models", help="folder of trained models: reused when present, else trained into it")
    parser.add_argument("--telegram", action="store_true", help="alerts to a fake Bot API (latency per alert)")
    parser.add_argument("--chart-workers", type=int, default=None, help="alerts.chart_workers (default: cores)")
    parser.add_argument("--profile", action="store_true", help="cProfile the last timed cycle")
    parser.add_argument("--per-symbol-baseline", action="store_true", help="score one symbol per call too")
    asyncio.run(main(parser.parse_args()))
