"""Latency of stream pump alerts, from the chunk close to the Telegram request, with many streamed symbols.

    python bench/bench_stream_latency.py [--symbols 200] [--minutes 24] [--speed 1] [--seed 700]
                                         [--faults] [--memory] [--json OUT]

A synthetic tape (``feeds.synthetic_trades``, pumps and hard negatives) is served by the loopback
Binance (REST + WebSocket, in a thread of its own, as a remote exchange would be); the system is
built by ``bot.runtime.compose`` as ``vigil run`` builds it, with every tape symbol in
``[streams]``, the shipped chunk model, and python-telegram-bot sending to the fake Bot API on
127.0.0.1. At ``--speed 1`` the market runs in real time. For every planted pump that was alerted:

* **alert latency**: from the close (wall clock) of the first chunk that fired to the moment the
  fake Bot API received ``sendPhoto``/``sendMessage`` for it (the figure the alert text reports);
* **from the first pump chunk**: from the close of the first chunk containing the pump's start to
  that request (adds the chunks the detector needed: 0 when it fired on the first pump chunk).

``--memory`` samples the process RSS every ``--sample`` wall seconds (``/proc/self/status``) and
the job's buffers, for the flat-memory check over a long accelerated replay. The load average
(``os.getloadavg``) at start and end is printed with the figures: the machine is shared.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from bot.runtime.compose import compose  # noqa: E402
from bot.runtime.demo_streams import match_stream_events  # noqa: E402
from core.config import default_config  # noqa: E402
from feeds.clock import ReplayClock  # noqa: E402
from feeds.loopback import LoopbackExchange, StreamFaults  # noqa: E402
from feeds.synthetic_trades import generate_trades  # noqa: E402
from storage.db import open_database  # noqa: E402
from tests.fakes.telegram import FakeTelegram  # noqa: E402

CHAT = -1001


def rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


async def run(args: argparse.Namespace, workdir: Path) -> dict[str, object]:
    tape = generate_trades(
        args.symbols, minutes=args.minutes, seed=args.seed, pumps_per_hour=args.pumps_per_hour,
        negatives_per_hour=2.0, quiet_minutes=8,
    )  # fmt: skip
    origin = tape.start_ms + 6 * 60_000
    clock = ReplayClock(origin, speed=args.speed, paused=True)
    faults = StreamFaults(disconnect_every_s=30, drop_rate=0.01, duplicate_rate=0.01, seed=1) if args.faults else None
    exchange = LoopbackExchange(tape.trades, clock, faults=faults)
    samples: list[dict[str, float]] = []
    load0 = os.getloadavg()
    with exchange.running_in_thread():
        async with FakeTelegram() as tg:
            cfg = default_config(
                database={"url": f"sqlite:///{workdir / 'vigil.db'}"},
                exchanges={"binance": {"ccxt_config": exchange.ccxt_config()}},
                streams={"symbols": tape.symbols, "keep_raw_minutes": args.keep_raw_minutes},
                telegram={"token": tg.token, "base_url": tg.base_url, "base_file_url": tg.base_file_url,
                          "allowed_chat_ids": [CHAT]},
                alerts={"chart_dir": str(workdir / "charts"), "cooldown_minutes": 0},
                detectors={"zscore": {}},
            )  # fmt: skip
            _engine, factory = open_database(cfg.database.url)
            system = await compose(cfg, factory, with_application=False, stream_clock=clock)
            job = system.stream
            t0 = time.perf_counter()
            await job.start()
            start_took = time.perf_counter() - t0
            clock.resume()
            next_sample = 0.0
            while clock.now_ms() < tape.end_ms:
                await asyncio.sleep(1.0)
                if args.memory and time.perf_counter() - t0 >= next_sample:
                    next_sample += args.sample
                    samples.append(
                        {
                            "wall_s": time.perf_counter() - t0,
                            "market_min": (clock.now_ms() - origin) / 60_000,
                            "rss_mib": rss_mib(),
                            "pending_trades": job.book.pending_trades(),
                            "held": sum(t.held for t in job.stream.tracks.values()),
                            "lag_chunks": (job.due_until() - min(job.book.next_chunk_ms(s) or 0 for s in tape.symbols))
                            / job.chunk_ms,
                        }
                    )
                    print(samples[-1], flush=True)
            await asyncio.sleep(2.0)
            await system.dispatcher.flush()
            await system.aclose()
            # an alert's text goes out first (sendMessage), its chart right after as a reply (sendPhoto)
            calls = [c for c in tg.calls("sendMessage", ok_only=True) if "<b>" in c.params.get("text", "")]
            photos = len(tg.calls("sendPhoto", ok_only=True))
    load1 = os.getloadavg()
    # which request carried which alert: the caption names the symbol and the chunk time
    sent_at: dict[tuple[str, str], float] = {}
    for c in calls:
        text = c.params["text"]
        lines = text.splitlines()
        symbol = lines[0].split("<b>")[1].split("</b>")[0]
        when = lines[1].removeprefix("trade chunk ").strip()
        sent_at.setdefault((symbol, when), c.at)
    events = pd.DataFrame([
        {"symbol": e.symbol, "bar_ts": e.bar_ts, "close_ms": e.bar_ts + job.chunk_ms} for e in job.events
    ], columns=["symbol", "bar_ts", "close_ms"])  # fmt: skip
    pumps = match_stream_events(events, tape.labels, job.chunk_ms, origin + job.chunk_ms)
    lat, lat_first = [], []
    for e in events.itertuples():
        key = (e.symbol, pd.Timestamp(e.bar_ts, unit="ms", tz="UTC").strftime("%Y-%m-%d %H:%M:%S UTC"))
        if key in sent_at:
            lat.append(sent_at[key] - clock.wall_seconds(e.close_ms))
    for p in pumps[pumps["found"]].itertuples():
        key = (p.symbol, pd.Timestamp(int(p.alert_chunk_ms), unit="ms", tz="UTC").strftime("%Y-%m-%d %H:%M:%S UTC"))
        if key in sent_at:
            lat_first.append(sent_at[key] - clock.wall_seconds(int(p.first_pump_chunk_close_ms)))

    def q(values: list[float]) -> dict[str, float]:
        a = np.asarray(values)
        if not len(a):
            return {}
        return {"n": len(a), "p50": float(np.median(a)), "p95": float(np.quantile(a, 0.95)), "max": float(a.max())}

    rounds = job.rounds
    out = {
        "symbols": args.symbols,
        "market_minutes": (tape.end_ms - origin) / 60_000,
        "speed": args.speed,
        "load_before": load0,
        "load_after": load1,
        "start_s": start_took,
        "trades": job.stream.stats.trades,
        "reconnects": job.stream.stats.reconnects,
        "backfilled": job.stream.stats.backfilled,
        "pumps": len(pumps),
        "found": int(pumps["found"].sum()),
        "before_peak": int(pumps["before_peak"].sum()),
        "alerts": len(events),
        "charts_sent": photos,
        "false_alarms": int(events["false_alarm"].sum()) if len(events) else 0,
        "alert_latency_s": q(lat),
        "from_first_pump_chunk_s": q(lat_first),
        # rounds that closed most symbols at once (the chunk-close batch), and every round with an alert
        "round_score_s": q([r.score_s for r in rounds if r.rows >= args.symbols // 2]),
        "round_rows": q([float(r.rows) for r in rounds]),
        "alert_round_total_s": q([r.total_s for r in rounds if r.events]),
        "memory": samples,
    }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--symbols", type=int, default=200)
    ap.add_argument("--minutes", type=float, default=24)
    ap.add_argument("--speed", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=700)
    ap.add_argument("--pumps-per-hour", type=float, default=1.0)
    ap.add_argument("--faults", action="store_true")
    ap.add_argument("--memory", action="store_true")
    ap.add_argument("--sample", type=float, default=30.0, help="wall seconds between memory samples")
    ap.add_argument("--keep-raw-minutes", type=int, default=0)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = asyncio.run(run(args, Path(tmp)))
    summary = {k: v for k, v in out.items() if k != "memory"}
    print(json.dumps(summary, indent=2))
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
