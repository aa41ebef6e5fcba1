"""The dispatcher against the fake Bot API: sends once, honours 429/403/400/5xx, survives a crash.

An alert goes out as its text (``sendMessage`` with the buttons) and then its chart
(``sendPhoto`` replying to it); the chart's own step is tested in ``test_chart_delivery.py``.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from rich.console import Console
from sqlalchemy import select
from telegram import Bot

from bot.alerts.dispatcher import ConsoleSink, Dispatcher, TelegramSink, _chart_inputs
from storage.db import open_database
from storage.models import Chat, Delivery, Event
from storage.outbox import queue_alerts
from storage.social import upsert_social
from tests.bot.telegram.helpers import candles, store
from tests.fakes.telegram import FakeTelegram

NOW = datetime(2024, 1, 10, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.t = NOW

    def __call__(self) -> datetime:
        return self.t


@pytest.fixture
async def bot(tg: FakeTelegram) -> AsyncIterator[Bot]:
    async with Bot(tg.token, base_url=tg.base_url, base_file_url=tg.base_file_url) as b:
        yield b


def queue(factory: Any, symbol: str, bars: list[int], chats: list[int], channel: str = "telegram") -> None:
    events = store(factory, symbol, candles(48, spike_at=bars[0]), [(b, "zscore", 6.0) for b in bars])
    with factory.begin() as s:
        evs = list(s.scalars(select(Event).where(Event.id.in_([e.id for e in events]))))
        queue_alerts(s, evs, chat_ids=chats, channel=channel, now=NOW)


def statuses(factory: Any) -> list[tuple[str, int, str | None]]:
    with factory() as s:
        return [(d.status, d.attempts, d.last_error) for d in s.scalars(select(Delivery).order_by(Delivery.id))]


def dispatcher(factory: Any, bot: Bot, clock: Clock, **kw: Any) -> Dispatcher:
    return Dispatcher(factory, {"telegram": TelegramSink(bot)}, now=clock, chart_bars=40, **kw)


async def test_flush_sends_text_with_buttons_then_chart_as_reply_once(factory: Any, tg: FakeTelegram, bot: Bot) -> None:
    queue(factory, "BTC/USDT", [40], [11, 12])
    d = dispatcher(factory, bot, Clock())
    result = await d.flush()
    assert (result.sent, result.failed, result.charts_sent, result.charts_failed) == (2, 0, 2, 0)
    texts, photos = tg.calls("sendMessage"), tg.calls("sendPhoto")
    assert [t.params["chat_id"] for t in texts] == [11, 12] and [p.params["chat_id"] for p in photos] == [11, 12]
    assert "<b>BTC/USDT</b>" in texts[0].params["text"] and texts[0].params["parse_mode"] == "HTML"
    buttons = [b["callback_data"] for row in texts[0].params["reply_markup"]["inline_keyboard"] for b in row]
    assert buttons == ["v1:m:1", "v1:c:1", "v1:b:1", "v1:d:1"]
    assert photos[0].files["photo"].startswith(b"\x89PNG")
    with factory() as s:
        rows = list(s.scalars(select(Delivery).order_by(Delivery.id)))
    assert all(r.status == "sent" and r.chart_status == "sent" and r.sent_at for r in rows)
    # each chart replies to its own chat's text message
    assert [p.params["reply_parameters"]["message_id"] for p in photos] == [r.message_id for r in rows]
    assert all(r.chart_message_id and r.chart_message_id != r.message_id for r in rows)
    again = await d.flush()
    assert (again.sent, again.charts_sent) == (0, 0)
    assert (len(tg.calls("sendMessage")), len(tg.calls("sendPhoto"))) == (2, 2)


async def test_429_waits_retry_after_without_counting_an_attempt(factory: Any, tg: FakeTelegram, bot: Bot) -> None:
    queue(factory, "BTC/USDT", [40], [11])
    tg.inject("sendMessage", 429, retry_after=30)
    clock = Clock()
    d = dispatcher(factory, bot, clock)
    assert (await d.flush()).retried == 1
    assert statuses(factory) == [("pending", 0, "429: Flood control exceeded. Retry in 30 seconds")]
    with factory() as s:
        assert s.scalar(select(Delivery.next_attempt_at)) == NOW + timedelta(seconds=30)
    clock.t = NOW + timedelta(seconds=29)
    assert (await d.flush()).sent == 0
    clock.t = NOW + timedelta(seconds=30)
    assert (await d.flush()).sent == 1
    assert [r.method for r in tg.sent(11)] == ["sendMessage", "sendPhoto"]


async def test_403_fails_delivery_and_marks_chat_inactive(factory: Any, tg: FakeTelegram, bot: Bot) -> None:
    queue(factory, "BTC/USDT", [40], [11, 12])
    tg.inject("sendMessage", 403)
    result = await dispatcher(factory, bot, Clock()).flush()
    assert (result.sent, result.failed) == (1, 1)
    assert statuses(factory)[0] == ("failed", 1, "403: Forbidden: bot was blocked by the user")
    with factory() as s:
        assert s.get(Chat, 11).active is False
    queue(factory, "ETH/USDT", [41], [11, 12])  # inactive chat gets no new delivery
    with factory() as s:
        assert s.scalar(select(Delivery).where(Delivery.chat_id == 11, Delivery.status == "pending")) is None


async def test_400_is_failed_and_not_retried(factory: Any, tg: FakeTelegram, bot: Bot) -> None:
    queue(factory, "BTC/USDT", [40], [11])
    tg.inject("sendMessage", 400, description="Bad Request: chat not found")
    clock = Clock()
    d = dispatcher(factory, bot, clock)
    assert (await d.flush()).failed == 1
    clock.t += timedelta(days=1)
    await d.flush()
    assert statuses(factory) == [("failed", 1, "400: Chat not found")]
    assert len(tg.calls("sendMessage")) == 1 and not tg.calls("sendPhoto")  # no chart without its text


async def test_5xx_retries_with_backoff_then_fails_at_max_attempts(factory: Any, tg: FakeTelegram, bot: Bot) -> None:
    queue(factory, "BTC/USDT", [40], [11])
    tg.inject("sendMessage", 500, times=10)
    clock = Clock()
    d = dispatcher(factory, bot, clock, max_attempts=3, backoff_base_s=10)
    waits = []
    for _ in range(3):
        await d.flush()
        with factory() as s:
            row = s.scalar(select(Delivery))
        if row.next_attempt_at is not None:
            waits.append((row.next_attempt_at - clock.t).total_seconds())
            clock.t = row.next_attempt_at
    assert waits == [10.0, 20.0]
    [(status, attempts, error)] = statuses(factory)
    assert (status, attempts) == ("failed", 3)
    assert "Internal Server Error" in error
    assert len(tg.calls("sendMessage")) == 3


async def test_dropped_connections_then_restart_deliver_each_alert_exactly_once(
    sqlite_url: str, tg: FakeTelegram, factory: Any
) -> None:
    """The server drops connections mid-batch and the process dies mid-send; after a restart all go out once."""
    for i, sym in enumerate(["BTC/USDT", "ETH/USDT", "SOL/USDT", "DOGE/USDT", "ADA/USDT"]):
        queue(factory, sym, [30 + i], [11])
    tg.inject("sendMessage", None, times=2)  # two requests die on the wire (not delivered)
    clock = Clock()
    async with Bot(tg.token, base_url=tg.base_url) as bot1:
        first = await dispatcher(factory, bot1, clock).flush()
        assert (first.sent, first.retried) == (3, 2)
        # the process is killed while the next request hangs on the wire
        clock.t += timedelta(minutes=1)
        tg.inject("sendMessage", 0)
        task = asyncio.create_task(dispatcher(factory, bot1, clock).flush())
        await tg.wait_for(lambda: any(r.outcome == "hung" for r in tg.requests))
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert sorted(s for s, _, _ in statuses(factory)).count("sending") == 1

    # restart: new engine, new bot, new dispatcher; the clock is past the lease
    _engine, factory2 = open_database(sqlite_url)
    clock.t += timedelta(minutes=10)
    async with Bot(tg.token, base_url=tg.base_url) as bot2:
        second = await dispatcher(factory2, bot2, clock).flush()
    assert second.recovered == 1
    assert [s for s, _, _ in statuses(factory2)] == ["sent"] * 5
    texts = [r for r in tg.sent(11) if r.method == "sendMessage"]
    delivered = Counter(json.dumps(r.params["text"].split("\n")[0]) for r in texts)
    assert len(delivered) == 5 and set(delivered.values()) == {1}
    charts = Counter(r.params["caption"] for r in tg.sent(11) if r.method == "sendPhoto")
    assert len(charts) == 5 and set(charts.values()) == {1}


@pytest.mark.parametrize(("resend", "copies", "status"), [(True, 2, "sent"), (False, 1, "failed")])
async def test_crash_after_telegram_accepted_is_the_documented_trade_off(
    factory: Any, tg: FakeTelegram, resend: bool, copies: int, status: str
) -> None:
    """Telegram took the message but we died before recording it: at-least-once resends, at-most-once gives up."""
    queue(factory, "BTC/USDT", [40], [11])
    tg.inject("sendMessage", 0, after_processing=True)
    clock = Clock()
    async with Bot(tg.token, base_url=tg.base_url) as bot:
        task = asyncio.create_task(dispatcher(factory, bot, clock).flush())
        await tg.wait_for(lambda: any(r.outcome == "hung-after" for r in tg.requests))
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        clock.t += timedelta(minutes=10)
        await dispatcher(factory, bot, clock, resend_abandoned=resend).flush()
    assert len([r for r in tg.sent(11) if r.method == "sendMessage"]) == copies
    assert statuses(factory)[0][0] == status


async def test_console_sink_prints_and_writes_png(factory: Any, tmp_path: Path) -> None:
    queue(factory, "BTC/USDT", [40], [0], channel="console")
    console = Console(record=True, width=100)
    d = Dispatcher(factory, {"console": ConsoleSink(tmp_path / "charts", console)}, now=Clock())
    assert (await d.flush()).sent == 1
    text = console.export_text()
    assert "BTC/USDT · binance · 1h" in text and "<b>" not in text
    [png] = list((tmp_path / "charts").glob("*.png"))
    assert png.read_bytes().startswith(b"\x89PNG") and png.name[:20] in text
    assert text.index("BTC/USDT · binance · 1h") < text.index("chart of alert")  # the text first, then the chart
    assert statuses(factory) == [("sent", 1, None)]


async def test_text_longer_than_a_photo_caption_still_goes_whole(factory: Any, tg: FakeTelegram, bot: Bot) -> None:
    queue(factory, "BTC/USDT", [40], [11])
    with factory() as s:
        alert = s.scalars(select(Delivery)).one().alert
        _ = alert.events
    sink = TelegramSink(bot)
    message_id = await sink.send_text(11, "x" * 1500, alert)  # over the 1,024-character caption limit
    assert message_id and not tg.calls("sendPhoto")
    [msg] = tg.calls("sendMessage")
    assert len(msg.params["text"]) == 1500 and msg.params["reply_markup"]["inline_keyboard"]


def test_alert_chart_shows_stored_social_volume_and_earlier_events(factory: Any) -> None:
    frame = candles(48, spike_at=40)
    earlier = store(factory, "ETH/USDT", frame, [(30, "lstm_forecaster", 9.0)])
    [event] = store(factory, "ETH/USDT", frame, [(40, "zscore", 6.0)])
    later = store(factory, "ETH/USDT", frame, [(45, "zscore", 7.0)])  # after the alert's bar: never drawn
    with factory.begin() as s:
        upsert_social(s, "files", "ETH/USDT", "social_volume", pd.Series(5.0, index=frame.index[:41]))
        [alert] = queue_alerts(s, [s.get(Event, event.id)], chat_ids=[11], channel="telegram", now=NOW)
        chart, context = _chart_inputs(s, alert, bars=20)
    assert chart.index[-1] == frame.index[40] and len(chart) == 20
    assert chart["social_volume"].tolist() == [5.0] * 20
    assert [e.bar_ts for e in context] == [earlier[0].bar_ts, event.bar_ts]
    assert later[0].bar_ts not in {e.bar_ts for e in context}


async def test_a_delivery_sent_after_a_failure_keeps_no_error(factory: Any, tg: FakeTelegram, bot: Bot) -> None:
    queue(factory, "BTC/USDT", [40], [11])
    tg.inject("sendMessage", 502)  # the alert's text (its chart follows once the text is out)
    clock = Clock()
    d = dispatcher(factory, bot, clock)
    assert (await d.flush()).retried == 1
    [(status, attempts, error)] = statuses(factory)
    assert (status, attempts) == ("pending", 1) and error and "Bad Gateway" in error
    clock.t += timedelta(hours=1)
    assert (await d.flush()).sent == 1
    assert statuses(factory) == [("sent", 2, None)]  # the old error no longer describes a sent message
