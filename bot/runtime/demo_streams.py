"""``vigil demo --streams``: pump alerts in seconds, offline, through a loopback WebSocket exchange.

A synthetic trade tape with planted pumps and hard negatives (:mod:`feeds.synthetic_trades`) is
served by :class:`feeds.loopback.LoopbackExchange` on 127.0.0.1 over Binance's REST and
WebSocket protocol, faster than real time (``speed``). The main job is built exactly as
``vigil run`` builds it (``bot.runtime.compose``), with the tape's symbols in ``[streams]``; the
real ccxt.pro client subscribes, the stream job scores every 15 s chunk, and alerts go through
the outbox to the console (and to Telegram when a token is configured). At the end the alerts
are compared with the planted pumps: found, found before the price peak, false alarms, and how
many seconds after the first abnormal chunk closed each alert went out.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from core.config import Config, default_config

__all__ = ["StreamDemoOptions", "StreamDemoResult", "match_stream_events", "run_stream_demo", "summarize_stream_demo"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StreamDemoOptions:
    directory: Path = Path("vigil-demo-streams")
    symbols: int = 20
    minutes: float = 40.0
    speed: float = 10.0
    seed: int = 17
    faults: bool = False
    pumps_per_hour: float = 1.0
    keep: bool = False


@dataclass
class StreamDemoResult:
    directory: Path
    seconds: float
    market_minutes: float
    events: pd.DataFrame
    pumps: pd.DataFrame  # the planted pumps in the scored span, with what happened to each
    stats: dict[str, Any] = field(default_factory=dict)
    db_url: str = ""


def match_stream_events(events: pd.DataFrame, labels: pd.DataFrame, chunk_ms: int, scored_from: int) -> pd.DataFrame:
    """Planted pumps starting at or after ``scored_from``, each with its first event (if any).

    ``events``: ``symbol, bar_ts`` (chunk start) and ``close_ms``. A pump is found by an event on
    its symbol whose chunk overlaps ``[start, end]``; *before peak* when that chunk closed by the
    price peak. Events overlapping no pump (or other label) of their symbol are false alarms
    (``false_alarm`` column of ``events``, set in place).
    """
    pumps = labels[(labels["kind"] == "pump_dump") & (labels["start"] >= scored_from)].copy()
    first_close, first_chunk = [], []
    for p in pumps.itertuples():
        hit = events[
            (events["symbol"] == p.symbol) & (events["bar_ts"] + chunk_ms > p.start) & (events["bar_ts"] <= p.end)
        ]
        first_close.append(int(hit["close_ms"].min()) if len(hit) else None)
        first_chunk.append(int(hit["bar_ts"].min()) if len(hit) else None)
    pumps["alert_close_ms"] = pd.array(first_close, dtype="Int64")
    pumps["alert_chunk_ms"] = pd.array(first_chunk, dtype="Int64")
    pumps["found"] = pumps["alert_close_ms"].notna()
    pumps["before_peak"] = pumps["found"] & (pumps["alert_close_ms"].fillna(2**62) <= pumps["peak"])
    pumps["first_pump_chunk_close_ms"] = pumps["start"] - pumps["start"] % chunk_ms + chunk_ms
    all_pumps = labels[labels["kind"] == "pump_dump"]
    false = []
    for e in events.itertuples():
        mine = all_pumps[all_pumps["symbol"] == e.symbol]
        false.append(not ((mine["start"] < e.bar_ts + chunk_ms) & (mine["end"] >= e.bar_ts)).any())
    events["false_alarm"] = false
    return pumps.reset_index(drop=True)


def stream_demo_config(
    options: StreamDemoOptions, symbols: list[str], ccxt_config: dict[str, Any], base: Config | None
) -> Config:
    directory = options.directory.resolve()
    telegram = base.telegram.model_dump() if base is not None else {}
    if telegram.get("token") is not None:
        telegram["token"] = base.telegram.token.get_secret_value()  # type: ignore[union-attr]
    return default_config(
        database={"url": f"sqlite:///{directory / 'vigil.db'}"},
        exchanges={"binance": {"ccxt_config": ccxt_config}},
        streams={"symbols": symbols, "exchange": "binance"},
        detectors={"zscore": {}},  # the candle cycle does not run in this demo
        telegram=telegram,
        alerts={"chart_dir": str(directory / "charts"), "cooldown_minutes": 0},
    )


async def run_stream_demo(
    options: StreamDemoOptions, base: Config | None = None, progress: Any = None
) -> StreamDemoResult:
    """Replay a trade tape through the loopback exchange and the stream job; returns what happened."""
    from sqlalchemy import select

    from bot.runtime.compose import compose
    from feeds.clock import ReplayClock
    from feeds.loopback import LoopbackExchange, StreamFaults
    from feeds.synthetic_trades import generate_trades
    from storage.db import open_database
    from storage.models import Delivery, Event

    if options.directory.exists() and not options.keep:
        shutil.rmtree(options.directory)
    options.directory.mkdir(parents=True, exist_ok=True)
    tape = generate_trades(
        options.symbols, minutes=options.minutes, seed=options.seed, pumps_per_hour=options.pumps_per_hour,
        negatives_per_hour=2.0, quiet_minutes=8.0,
    )  # fmt: skip
    origin = tape.start_ms + 6 * 60_000  # 5 minutes of history for the rolling features, fetched over REST at start
    clock = ReplayClock(origin, speed=options.speed, paused=True)
    faults = (
        StreamFaults(disconnect_every_s=30, drop_rate=0.01, duplicate_rate=0.01, seed=options.seed)
        if options.faults
        else None
    )
    exchange = LoopbackExchange(tape.trades, clock, faults=faults)
    t0 = time.perf_counter()
    with exchange.running_in_thread():
        cfg = stream_demo_config(options, tape.symbols, exchange.ccxt_config(), base)
        _engine, factory = open_database(cfg.database.url)
        system = await compose(cfg, factory, console_too=True, with_application=False, stream_clock=clock)
        job = system.stream
        chunk_ms = job.chunk_ms
        task = (
            progress.add_task("replaying the trade tape", total=tape.end_ms - origin) if progress is not None else None
        )
        try:
            await job.start()  # five minutes of history over REST while the replay waits at its origin
            clock.resume()
            while clock.now_ms() < tape.end_ms:
                await asyncio.sleep(min(0.5, clock.wall_delay(tape.end_ms)))
                if progress is not None:
                    progress.update(task, completed=min(clock.now_ms(), tape.end_ms) - origin)
            await asyncio.sleep(1.0)  # the last chunk's round and its alerts
            await system.dispatcher.flush()
        finally:
            await system.aclose()
        stats = {
            "trades": job.stream.stats.trades,
            "reconnects": job.stream.stats.reconnects,
            "backfilled": job.stream.stats.backfilled,
            "rounds": len(job.rounds),
            "dropped": exchange.dropped,
            "duplicated": exchange.duplicated,
            "disconnects": exchange.disconnects,
        }
    with factory() as session:
        rows = session.execute(select(Event)).scalars().all()
        sent = {d.alert_id: d.sent_at for d in session.scalars(select(Delivery)) if d.sent_at is not None}
    events = pd.DataFrame(
        [
            {
                "symbol": e.symbol,
                "bar_ts": e.bar_ts,
                "close_ms": e.bar_ts + chunk_ms,
                "score": e.score,
                "seconds_to_send": (sent[e.alert_id].timestamp() * 1000 - e.details["first_abnormal_close_wall_ms"])
                / 1000
                if e.alert_id in sent
                else None,
            }
            for e in rows
        ],
        columns=["symbol", "bar_ts", "close_ms", "score", "seconds_to_send"],
    )
    scored_from = origin + chunk_ms
    pumps = match_stream_events(events, tape.labels, chunk_ms, scored_from)
    return StreamDemoResult(
        directory=options.directory,
        seconds=time.perf_counter() - t0,
        market_minutes=(tape.end_ms - origin) / 60_000,
        events=events,
        pumps=pumps,
        stats=stats,
        db_url=cfg.database.url,
    )


def summarize_stream_demo(result: StreamDemoResult, console: Any) -> None:
    """Print the closing summary: pumps found (before their peak), false alarms, seconds to send."""
    from rich.table import Table

    console.rule("[bold]vigil demo --streams summary")
    console.print(
        f"{result.market_minutes:.0f} market minutes replayed in {result.seconds:.0f} s; stream: {result.stats}"
    )
    pumps, events = result.pumps, result.events
    found, early = int(pumps["found"].sum()), int(pumps["before_peak"].sum())
    false = int(events["false_alarm"].sum()) if len(events) else 0
    table = Table(title="alerts against the planted pumps")
    for col in ("pumps", "found", "before peak", "alerts", "false alarms", "recall", "precision"):
        table.add_column(col, justify="right")
    recall = found / len(pumps) if len(pumps) else float("nan")
    precision = (len(events) - false) / len(events) if len(events) else float("nan")
    table.add_row(
        str(len(pumps)), str(found), str(early), str(len(events)), str(false), f"{recall:.2f}", f"{precision:.2f}"
    )
    console.print(table)
    delays = events["seconds_to_send"].dropna()
    if len(delays):
        pace = result.market_minutes * 60 / max(result.seconds, 1)
        console.print(
            f"seconds from the first abnormal chunk's close to the alert: median {delays.median():.1f}, "
            f"max {delays.max():.1f} (wall clock; the market ran {pace:.0f}x)"
        )
    console.print(f"events stored in {result.db_url}; charts in {result.directory / 'charts'}")
