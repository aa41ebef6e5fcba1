"""Alerts sent by the running Application's dispatcher, and the inline buttons under them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from bot.telegram.application import build_application, running_application
from bot.telegram.context import BotServices
from storage.models import Delivery, Event, SymbolMute
from storage.outbox import queue_alerts
from tests.bot.telegram.conftest import ADMIN, MEMBER
from tests.bot.telegram.helpers import candles, say, store
from tests.fakes.telegram import FakeTelegram


@pytest.fixture
async def alerted(bot_cfg: Any, services: BotServices, tg: FakeTelegram, factory: Any) -> AsyncIterator[int]:
    """The app running, BTC/USDT watched, and one alert delivered to ADMIN and MEMBER; yields its id."""
    app = build_application(bot_cfg, services, flush_interval=0.2)  # the JobQueue flushes the outbox
    async with running_application(app, poll_timeout=1):
        await say(tg, "/watch BTC/USDT", chat_id=ADMIN)
        frame = candles(200, spike_at=190)
        services.service.now = lambda: frame.index[-1].to_pydatetime()
        events = store(factory, "BTC/USDT", frame, [(190, "zscore", 7.0), (190, "pump_dump", 9.5)])
        with factory.begin() as s:
            evs = list(s.scalars(select(Event).where(Event.id.in_([e.id for e in events]))))
            [alert] = queue_alerts(s, evs, chat_ids=[ADMIN, MEMBER], now=datetime(2024, 1, 9, tzinfo=UTC))
            alert_id = alert.id
        await tg.wait_for(lambda: len(tg.calls("sendPhoto")) == 2)
        yield alert_id


async def test_alert_goes_out_through_the_job_queue(alerted: int, tg: FakeTelegram, factory: Any) -> None:
    texts = [c.params["text"] for c in tg.calls("sendMessage", ok_only=True) if c.params["chat_id"] == ADMIN]
    text = next(t for t in texts if "BTC/USDT</b>" in t)  # the alert's text; its chart replies to it
    assert "pump_dump: score 9.5 / threshold 4 (×2.4)" in text and "zscore" in text
    await tg.wait_for(lambda: _all_sent(factory))


def _all_sent(factory: Any) -> bool:
    with factory() as s:
        return {d.status for d in s.scalars(select(Delivery))} == {"sent"}


async def test_mute_button_mutes_the_symbol_for_an_hour(alerted: int, tg: FakeTelegram, factory: Any) -> None:
    tg.push_callback(f"v1:m:{alerted}", chat_id=ADMIN, user_id=ADMIN)
    await tg.wait_for(lambda: tg.calls("answerCallbackQuery"))
    assert tg.calls("answerCallbackQuery")[-1].params["text"].startswith("BTC/USDT muted until")
    with factory() as s:
        [mute] = list(s.scalars(select(SymbolMute)))
    assert (mute.chat_id, mute.symbol) == (ADMIN, "BTC/USDT")


async def test_member_cannot_press_mute(alerted: int, tg: FakeTelegram, factory: Any) -> None:
    tg.push_callback(f"v1:m:{alerted}", chat_id=MEMBER, user_id=MEMBER)
    await tg.wait_for(lambda: tg.calls("answerCallbackQuery"))
    assert tg.calls("answerCallbackQuery")[-1].params["text"] == "Only an admin can mute."
    with factory() as s:
        assert list(s.scalars(select(SymbolMute))) == []


async def test_details_and_chart_buttons(alerted: int, tg: FakeTelegram) -> None:
    tg.push_callback(f"v1:d:{alerted}", chat_id=MEMBER, user_id=MEMBER)
    await tg.wait_for(lambda: tg.calls("sendMessage", ok_only=True)[-1].params["chat_id"] == MEMBER)
    details = tg.calls("sendMessage")[-1].params["text"]
    assert "<b>BTC/USDT</b>" in details and "volume ×" in details
    tg.push_callback(f"v1:c:{alerted}", chat_id=MEMBER, user_id=MEMBER)
    await tg.wait_for(lambda: len(tg.calls("sendPhoto")) == 3)
    assert tg.calls("sendPhoto")[-1].files["photo"].startswith(b"\x89PNG")


@pytest.mark.parametrize("data", ["v0:m:1", "v1:x:1", "v1:m:abc", "v1:m:" + "9" * 40, "garbage", ""])
async def test_bad_or_old_callback_data_is_refused(alerted: int, tg: FakeTelegram, factory: Any, data: str) -> None:
    tg.push_callback(data, chat_id=ADMIN, user_id=ADMIN)
    await tg.wait_for(lambda: tg.calls("answerCallbackQuery"))
    assert tg.calls("answerCallbackQuery")[-1].params["text"] == "This button has expired."
    with factory() as s:
        assert list(s.scalars(select(SymbolMute))) == []


async def test_button_for_a_deleted_alert_answers_briefly(alerted: int, tg: FakeTelegram) -> None:
    tg.push_callback("v1:d:99999", chat_id=ADMIN, user_id=ADMIN)
    await tg.wait_for(lambda: tg.calls("answerCallbackQuery"))
    assert tg.calls("answerCallbackQuery")[-1].params["text"] == "alert 99999 no longer exists"


# -- every callback query is answered exactly once -------------------------------------------------
async def test_chart_button_that_cannot_draw_answers_once_and_says_why_in_the_chat(
    alerted: int, tg: FakeTelegram, factory: Any
) -> None:
    with factory.begin() as s:  # an alert on a market whose candles are gone
        from storage.candles import delete_candles
        from storage.models import Candle

        ts = list(s.scalars(select(Candle.ts).where(Candle.symbol == "BTC/USDT")))
        delete_candles(s, "binance", "BTC/USDT", "1h", ts)
    query = tg.push_callback(f"v1:c:{alerted}", chat_id=ADMIN, user_id=ADMIN)
    await tg.wait_for(lambda: any("could not draw" in t.lower() for t in tg.replies_text(ADMIN)))
    await tg.wait_idle()
    [answer] = tg.answers(query)
    assert answer.outcome == "ok" and answer.params["text"].startswith("Drawing BTC/USDT")


async def test_chart_button_draws_the_alerts_market_even_when_no_longer_watched(alerted: int, tg: FakeTelegram) -> None:
    assert await say(tg, "/unwatch BTC/USDT", chat_id=ADMIN) == ["Stopped watching BTC/USDT."]
    photos = len(tg.calls("sendPhoto"))
    query = tg.push_callback(f"v1:c:{alerted}", chat_id=ADMIN, user_id=ADMIN)
    await tg.wait_for(lambda: len(tg.calls("sendPhoto")) == photos + 1)
    assert tg.calls("sendPhoto")[-1].params["caption"] == "BTC/USDT 1h, last 7 days"
    assert len(tg.answers(query)) == 1


@pytest.mark.parametrize("message", ["none", "inaccessible"])
async def test_buttons_on_missing_or_expired_messages_are_answered_once(
    alerted: int, tg: FakeTelegram, message: str
) -> None:
    query = tg.push_callback(f"v1:d:{alerted}", chat_id=ADMIN, user_id=ADMIN, message=message)
    await tg.wait_for(lambda: tg.answers(query))
    await tg.wait_idle()
    await asyncio.sleep(0.3)  # anything else the handler would do has happened by now
    [answer] = tg.answers(query)
    assert answer.outcome == "ok"
    if message == "none":
        assert answer.params["text"] == "This button has expired."


async def test_a_failing_button_handler_still_answers_exactly_once(
    alerted: int, tg: FakeTelegram, services: BotServices, monkeypatch: Any
) -> None:
    async def broken(alert_id: int) -> str:
        raise RuntimeError("database on fire")

    monkeypatch.setattr(services.service, "alert_details", broken)
    query = tg.push_callback(f"v1:d:{alerted}", chat_id=ADMIN, user_id=ADMIN)
    await tg.wait_for(lambda: tg.answers(query))
    await tg.wait_idle()
    await asyncio.sleep(0.3)
    [answer] = tg.answers(query)
    assert answer.outcome == "ok"


async def test_backtest_button_works_on_an_alert_whose_market_was_removed(
    alerted: int, tg: FakeTelegram, services: BotServices
) -> None:
    from tests.bot.telegram.helpers import tiny_png

    services.service.run_backtest_for_chat = lambda symbol, strategy, period: (f"{symbol}: 2 trades", tiny_png())
    await say(tg, "/unwatch BTC/USDT", chat_id=ADMIN)
    query = tg.push_callback(f"v1:b:{alerted}", chat_id=ADMIN, user_id=ADMIN)
    await tg.wait_for(lambda: any(r.params.get("caption") == "BTC/USDT equity" for r in tg.calls("sendPhoto")))
    assert tg.calls("editMessageText")[-1].params["text"] == "BTC/USDT: 2 trades"
    assert [a.params["text"] for a in tg.answers(query)] == ["Backtest started."]
