"""The Telegram link: an outage while polling is one warning and one recovery line, not tracebacks."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from bot.telegram.application import build_application
from bot.telegram.context import BotServices
from bot.telegram.link import TelegramLink
from tests.bot.telegram.conftest import ADMIN
from tests.bot.telegram.helpers import say
from tests.fakes.telegram import FakeTelegram


async def test_an_outage_while_polling_logs_one_warning_and_the_time_away(
    bot_cfg: Any, services: BotServices, tg: FakeTelegram, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    app = build_application(bot_cfg, services, flush_interval=None)
    link = TelegramLink(app, poll_timeout=1, retry_base=0.2, retry_max=0.5)
    link.start()
    try:
        await tg.wait_for(lambda: link.up)
        await tg.go_down()
        await tg.wait_for(lambda: not link.up)
        await asyncio.sleep(2.0)  # several polls fail meanwhile
        await tg.come_back()
        await tg.wait_for(lambda: link.up)
        assert await say(tg, "/unmute", chat_id=ADMIN) == ["Alerts unmuted."]  # commands flow again
    finally:
        await link.aclose()
    state = link.state()
    assert state.up and state.last_outage is not None and state.last_outage[1] > state.last_outage[0]
    records = [r for r in caplog.records if r.levelno >= logging.INFO and r.name.startswith(("telegram", "bot"))]
    assert not [r for r in records if r.levelno >= logging.ERROR], [r.getMessage() for r in records]
    warnings = [r.getMessage() for r in records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and warnings[0].startswith("Telegram unreachable"), warnings
    assert any(r.getMessage().startswith("Telegram reachable again after") for r in records)
    assert not any(r.exc_info for r in caplog.records if r.name.startswith("telegram"))


async def test_a_refused_token_is_not_retried(bot_cfg: Any, services: BotServices, tg: FakeTelegram) -> None:
    tg.token = "999:other-token"  # the fake now answers 401 to the bot's token
    app = build_application(bot_cfg, services, flush_interval=None)
    link = TelegramLink(app, retry_base=0.05, retry_max=0.05)
    link.start()
    try:
        await tg.wait_for(lambda: link.gave_up)
        calls = len(tg.requests)
        await asyncio.sleep(0.3)
        assert len(tg.requests) == calls  # no retry can fix a token
    finally:
        await link.aclose()
    assert not link.up and "InvalidToken" in (link.last_error or "")


async def test_stopping_during_an_outage_is_quiet_and_closes_the_clients(
    bot_cfg: Any, services: BotServices, tg: FakeTelegram, caplog: pytest.LogCaptureFixture
) -> None:
    app = build_application(bot_cfg, services, flush_interval=None)
    link = TelegramLink(app, poll_timeout=1, retry_base=0.2, retry_max=0.5)
    link.start()
    await tg.wait_for(lambda: link.up)
    await tg.go_down()
    await tg.wait_for(lambda: not link.up)
    await link.aclose()
    assert not app.running and app.bot.request._client.is_closed
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], [r.getMessage() for r in caplog.records]
