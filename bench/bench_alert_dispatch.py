"""Alert path costs: chart rendering, and outbox delivery vs. sending directly.

    /work/venv/bin/python bench/bench_alert_dispatch.py [--alerts 100]

Runs python-telegram-bot's real ``Bot`` against the fake Bot API
(``tests/fakes/telegram.py``) on 127.0.0.1, so the HTTP cost is local and the
figures show vigil's own overhead. Baseline in the same run: a plain loop of
``bot.send_photo`` with the same pre-rendered PNG and caption (no database, no
exactly-once bookkeeping).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import select  # noqa: E402
from telegram import Bot  # noqa: E402

from bot.alerts.charts import events_for_chart, render_alert_chart  # noqa: E402
from bot.alerts.dispatcher import Dispatcher, TelegramSink  # noqa: E402
from bot.alerts.text import compose_alert  # noqa: E402
from storage.db import open_database  # noqa: E402
from storage.models import Event  # noqa: E402
from storage.outbox import queue_alerts  # noqa: E402
from tests.bot.telegram.helpers import candles, store  # noqa: E402
from tests.fakes.telegram import FakeTelegram  # noqa: E402


def bench_render(repeats: int = 10) -> tuple[float, int]:
    frame = candles(120, spike_at=100)
    frame["social_volume"] = frame["volume"] / 2
    times, size = [], 0
    for _ in range(repeats):
        t = time.perf_counter()
        size = len(render_alert_chart(frame, title="bench"))
        times.append(time.perf_counter() - t)
    return statistics.median(times), size


async def bench_dispatch(n: int, tmp: Path) -> dict[str, float]:
    _engine, factory = open_database(f"sqlite:///{tmp / 'bench.db'}")
    symbols = [f"S{i:03d}/USDT" for i in range(n)]
    ids = []
    for i, sym in enumerate(symbols):
        ids += [e.id for e in store(factory, sym, candles(150, seed=i, spike_at=140), [(140, "zscore", 6.0)])]
    with factory.begin() as s:
        evs = list(s.scalars(select(Event).where(Event.id.in_(ids))))
        t = time.perf_counter()
        queue_alerts(s, evs, chat_ids=[11], now=datetime(2024, 1, 10, tzinfo=UTC))
        queue_s = time.perf_counter() - t
    out = {"queue_s": queue_s}
    async with FakeTelegram() as tg, Bot(tg.token, base_url=tg.base_url) as bot:
        d = Dispatcher(factory, {"telegram": TelegramSink(bot)}, chart_bars=120)
        t = time.perf_counter()
        r = await d.flush()
        out["outbox_s"] = time.perf_counter() - t
        assert r.sent == n, r
        with factory() as s:
            ev = s.get(Event, ids[0])
            alert = ev.alert
            text = compose_alert(alert, alert.events, candles(150, spike_at=140))
        png = render_alert_chart(candles(120), events=events_for_chart([ev]))
        t = time.perf_counter()
        for _ in range(n):
            await bot.send_photo(11, photo=png, caption=text, parse_mode="HTML")
        out["direct_s"] = time.perf_counter() - t
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--alerts", type=int, default=100)
    args = parser.parse_args()
    render_s, size = bench_render()
    print(f"render_alert_chart, 120 bars + social: median {render_s * 1000:.0f} ms, {size / 1024:.0f} KB")
    with tempfile.TemporaryDirectory() as tmp:
        r = asyncio.run(bench_dispatch(args.alerts, Path(tmp)))
    n = args.alerts
    print(f"queue_alerts, {n} events -> {n} alerts + deliveries: {r['queue_s'] * 1000:.0f} ms")
    rate = n / r["outbox_s"]
    print(f"Dispatcher.flush, {n} alerts (render + claim/send/record): {r['outbox_s']:.2f} s, {rate:.1f}/s")
    print(f"baseline: {n} x bot.send_photo, pre-rendered, no DB: {r['direct_s']:.2f} s, {n / r['direct_s']:.1f}/s")
    per = (r["outbox_s"] - r["direct_s"]) / n
    print(f"outbox overhead per alert (incl. chart render): {per * 1000:.0f} ms")


if __name__ == "__main__":
    main()
