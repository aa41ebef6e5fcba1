"""Found by the soak test: a refusal Telegram failed to deliver let the outsider's update through.

python-telegram-bot passes an update on to the next handler group when a handler raises
anything but ``ApplicationHandlerStop``; the guard's refusal raised the Bot API's 5xx, so
``/start`` from an outsider reached the command and recorded the chat (and ``/status``,
``/chart``, ``/backtest`` would have run). The guard now stops the update whatever the
refusal's fate.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import select

from bot.telegram.application import build_application, running_application
from bot.telegram.context import BotServices
from storage.models import Chat
from tests.bot.telegram.conftest import STRANGER
from tests.fakes.telegram import FakeTelegram


@pytest.fixture
async def running(bot_cfg: Any, services: BotServices, tg: FakeTelegram) -> AsyncIterator[Any]:
    app = build_application(bot_cfg, services, flush_interval=None)
    async with running_application(app, poll_timeout=1):
        yield app


@pytest.mark.parametrize(
    ("method", "status"), [("sendMessage", 500), ("sendMessage", None), ("answerCallbackQuery", 502)]
)
async def test_outsider_stays_out_when_the_refusal_fails(
    running: Any, tg: FakeTelegram, factory: Any, method: str, status: int | None
) -> None:
    tg.inject(method, status, times=1)
    if method == "answerCallbackQuery":
        tg.push_callback("v1:c:1", chat_id=STRANGER, user_id=STRANGER)
    else:
        tg.push_message("/start", chat_id=STRANGER, user_id=STRANGER)
    tg.push_message("/status", chat_id=STRANGER, user_id=STRANGER)  # the next one is refused as usual
    await tg.wait_for(lambda: any(r.params.get("text") for r in tg.calls("sendMessage", ok_only=True)))
    await tg.wait_idle()
    await asyncio.sleep(0.3)  # let any handler the update wrongly reached finish
    with factory() as s:
        assert list(s.scalars(select(Chat))) == []
    texts = [r.params.get("text") for r in tg.calls("sendMessage")]
    assert all(t == "Sorry, this bot is private." for t in texts), texts
    assert len(tg.calls("answerCallbackQuery")) == (1 if method == "answerCallbackQuery" else 0)
