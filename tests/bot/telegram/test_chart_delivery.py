"""Text first, chart right after: each exactly once, also when the process dies between or during them."""

from __future__ import annotations

import asyncio
import io
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select
from telegram import Bot

from bot.alerts.chart_pool import ChartPool, ThreadCharts
from bot.alerts.chart_template import ChartTemplate
from bot.alerts.charts import render_alert_chart
from bot.alerts.dispatcher import Dispatcher, TelegramSink
from storage.db import open_database
from storage.models import Delivery, Event
from storage.outbox import queue_alerts
from tests.bot.telegram.helpers import candles, store
from tests.fakes.telegram import FakeTelegram

NOW = datetime(2024, 1, 10, tzinfo=UTC)
SYMBOLS = ["BTC/USDT", "ETH/USDT", "SOL/USDT"]


class Clock:
    def __init__(self) -> None:
        self.t = NOW

    def __call__(self) -> datetime:
        return self.t


def queue(factory: Any, symbol: str, bar: int, chats: list[int]) -> None:
    events = store(factory, symbol, candles(48, spike_at=bar), [(bar, "zscore", 6.0)])
    with factory.begin() as s:
        evs = list(s.scalars(select(Event).where(Event.id.in_([e.id for e in events]))))
        queue_alerts(s, evs, chat_ids=chats, now=NOW)


def rows(factory: Any) -> list[tuple[str, str | None, int | None, int | None]]:
    with factory() as s:
        return [
            (d.status, d.chart_status, d.message_id, d.chart_message_id)
            for d in s.scalars(select(Delivery).order_by(Delivery.id))
        ]


def dispatcher(factory: Any, bot: Bot, clock: Clock, charts: Any = None) -> Dispatcher:
    return Dispatcher(factory, {"telegram": TelegramSink(bot)}, now=clock, chart_bars=40, charts=charts)


async def test_text_and_chart_each_go_once_across_a_crash_mid_chart(
    sqlite_url: str, tg: FakeTelegram, factory: Any
) -> None:
    for i, symbol in enumerate(SYMBOLS):
        queue(factory, symbol, 30 + i, [11])
    clock = Clock()
    tg.inject("sendPhoto", 0)  # the first chart hangs on the wire: the process is killed there
    async with Bot(tg.token, base_url=tg.base_url) as bot:
        first = dispatcher(factory, bot, clock)
        task = asyncio.create_task(first.flush())
        await tg.wait_for(lambda: any(r.outcome == "hung" for r in tg.requests))
        await tg.wait_for(lambda: len(tg.calls("sendMessage", ok_only=True)) == len(SYMBOLS))
        task.cancel()  # the process dies: its flush and its chart sender stop where they are
        first.cancel_charts()
        with pytest.raises(asyncio.CancelledError):
            await task
    # every text went out although the first chart never came back; one chart is caught mid-send
    state = rows(factory)
    assert [s for s, _, _, _ in state] == ["sent"] * 3
    assert sorted(c for _, c, _, _ in state) == ["pending", "pending", "sending"]

    _engine, factory2 = open_database(sqlite_url)  # the restart: new engine, bot and dispatcher
    clock.t += timedelta(minutes=10)  # past the lease
    async with Bot(tg.token, base_url=tg.base_url) as bot2:
        result = await dispatcher(factory2, bot2, clock).flush()
    assert (result.recovered, result.sent, result.charts_sent) == (1, 0, 3)
    state = rows(factory2)
    assert all(s == "sent" and c == "sent" for s, c, _, _ in state)
    texts = Counter(r.params["text"].split("\n")[0] for r in tg.calls("sendMessage", ok_only=True))
    charts = Counter(r.params["caption"] for r in tg.calls("sendPhoto", ok_only=True))
    assert len(texts) == 3 and set(texts.values()) == {1}  # no text twice
    assert len(charts) == 3 and set(charts.values()) == {1}  # every chart once
    replied_to = sorted(r.params["reply_parameters"]["message_id"] for r in tg.calls("sendPhoto", ok_only=True))
    assert replied_to == sorted(m for _, _, m, _ in state)  # each chart answers its own text


async def test_a_rate_limited_chart_is_retried_alone(factory: Any, tg: FakeTelegram) -> None:
    queue(factory, "BTC/USDT", 40, [11])
    tg.inject("sendPhoto", 429, retry_after=20)
    clock = Clock()
    async with Bot(tg.token, base_url=tg.base_url) as bot:
        d = dispatcher(factory, bot, clock)
        first = await d.flush()
        assert (first.sent, first.charts_retried) == (1, 1)
        with factory() as s:
            row = s.scalars(select(Delivery)).one()
            assert (row.chart_status, row.chart_attempts) == ("pending", 0)
            assert row.chart_next_attempt_at == NOW + timedelta(seconds=20)
            assert row.last_error.startswith("chart 429")
        clock.t = NOW + timedelta(seconds=20)
        second = await d.flush()
    assert (second.sent, second.charts_sent) == (0, 1)
    assert len(tg.calls("sendMessage")) == 1 and len(tg.calls("sendPhoto", ok_only=True)) == 1


class _Broken:
    async def render(self, candles: pd.DataFrame, events: pd.DataFrame | None, title: str) -> bytes:
        raise RuntimeError("no fonts today")

    def warm(self) -> None: ...

    def close(self) -> None: ...


async def test_a_chart_that_cannot_be_drawn_never_holds_back_the_text(factory: Any, tg: FakeTelegram) -> None:
    queue(factory, "BTC/USDT", 40, [11, 12])
    async with Bot(tg.token, base_url=tg.base_url) as bot:
        result = await dispatcher(factory, bot, Clock(), charts=_Broken()).flush()
    assert (result.sent, result.charts_failed) == (2, 2)
    assert len(tg.calls("sendMessage", ok_only=True)) == 2 and not tg.calls("sendPhoto")
    assert [(s, c) for s, c, _, _ in rows(factory)] == [("sent", "failed")] * 2


def _pixels(png: bytes) -> np.ndarray:
    return mpimg.imread(io.BytesIO(png))


def _chart_inputs(seed: int, spike: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    frame = candles(120, seed=seed, spike_at=spike)
    events = pd.DataFrame(
        {"timestamp": [frame.index[spike]], "detector": ["zscore"], "score": [9.0 + seed], "threshold": [4.0]}
    )
    return frame, events


def test_the_reused_template_draws_the_fresh_chart_and_leaks_nothing_between_alerts() -> None:
    template = ChartTemplate()
    a_frame, a_events = _chart_inputs(1, 110)
    b_frame, b_events = _chart_inputs(2, 60)
    b_frame["social_volume"] = np.linspace(0, 40, len(b_frame))
    first = template.render(a_frame, events=a_events, title="binance:BTC/USDT 1h")
    np.testing.assert_array_equal(
        _pixels(first), _pixels(render_alert_chart(a_frame, events=a_events, title="binance:BTC/USDT 1h"))
    )
    other = template.render(b_frame, events=b_events, title="binance:ETH/USDT 1h")  # the layout with social volume
    np.testing.assert_array_equal(
        _pixels(other), _pixels(render_alert_chart(b_frame, events=b_events, title="binance:ETH/USDT 1h"))
    )
    template.render(a_frame.iloc[:50], events=None, title="")  # a short chart without events in between
    assert template.render(a_frame, events=a_events, title="binance:BTC/USDT 1h") == first


async def test_chart_workers_draw_what_the_process_draws() -> None:
    frame, events = _chart_inputs(3, 100)
    pool = ChartPool(workers=2)
    try:
        pool.warm()
        drawn = await asyncio.gather(*(pool.render(frame, events, f"chart {i}") for i in range(3)))
    finally:
        pool.close()
    local = [await ThreadCharts().render(frame, events, f"chart {i}") for i in range(3)]
    assert drawn == local
