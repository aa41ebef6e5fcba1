"""Issue 17, failures 3 and 7 (chat part): a chat cannot make the bot do unbounded work.

Before: ``/backtest`` without a period (and the alert's backtest button, which never passes one)
loaded the whole stored history; any number of chats could run one at once; ``/backtest ... 30m``
passed the chat parser and failed in the backtest service; ``/threshold * zscore 1e-320`` was stored.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select

from bot.runtime.compose import make_backtest_runner
from bot.telegram.application import build_application, running_application
from bot.telegram.context import BotServices
from storage.candles import upsert_candles
from storage.events import NewEvent, insert_events
from storage.models import ThresholdOverride
from storage.watchlist import add_watch
from tests.bot.telegram.conftest import ADMIN, GROUP, MEMBER
from tests.bot.telegram.helpers import say
from tests.fakes.telegram import FakeTelegram

DAYS = 200


def _history(factory: Any, symbol: str = "BTC/USDT", days: int = DAYS) -> pd.DataFrame:
    """Hourly bars up to the last closed hour, ``days`` long, watched, with an event every 5 days."""
    end = pd.Timestamp.now(tz="UTC").floor("h") - pd.Timedelta(hours=1)
    idx = pd.date_range(end=end, periods=days * 24, freq="1h", tz="UTC")
    rng = np.random.default_rng(1)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.004, len(idx))))
    open_ = np.r_[close[0], close[:-1]]
    frame = pd.DataFrame(
        {
            "open": open_,
            "high": np.maximum(open_, close) * 1.001,
            "low": np.minimum(open_, close) * 0.999,
            "close": close,
            "volume": rng.uniform(10, 20, len(idx)),
        },
        index=idx,
    )
    with factory.begin() as s:
        add_watch(s, "binance", symbol, "1h")
        upsert_candles(s, "binance", symbol, "1h", frame)
        events = [
            NewEvent("binance", symbol, "1h", "zscore", int(t.value // 1_000_000), 9.0, 4.0, severity="high")
            for t in idx[24::120]
        ]
        insert_events(s, events)
    return frame


def _bars_in(text: str) -> int:
    """The bar count of a backtest summary ("... UTC, 2160 bars, 18 events")."""
    import re

    found = re.search(r"UTC, (\d+) bars,", text)
    assert found, text
    return int(found.group(1))


def test_chat_backtest_without_a_period_reads_the_default_period_only(bot_cfg: Any, factory: Any) -> None:
    _history(factory)
    runner = make_backtest_runner(bot_cfg, factory)
    assert runner is not None
    text, png = runner("BTC/USDT", None, None)  # what the alert's button asks for
    assert png[:4] == b"\x89PNG"
    assert 89 * 24 <= _bars_in(text) <= 90 * 24  # 90 days, not the 200 stored


def test_chat_backtest_loads_at_most_max_bars(bot_cfg: Any, factory: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import bot.telegram.limits as limits

    monkeypatch.setattr(limits, "CHAT_LIMITS", limits.ChatLimits(backtest_max_bars=500))
    _history(factory)
    runner = make_backtest_runner(bot_cfg, factory)
    assert runner is not None
    text, _png = runner("BTC/USDT", None, "3650d")
    assert _bars_in(text) == 500 and "only the newest 500 bars" in text


def test_chat_backtest_takes_every_period_the_chat_accepts(bot_cfg: Any, factory: Any) -> None:
    _history(factory)
    runner = make_backtest_runner(bot_cfg, factory)
    assert runner is not None
    text, _png = runner("BTC/USDT", None, "3000m")  # 50 hours: minutes are a chat unit too
    assert 49 <= _bars_in(text) <= 50


@pytest.fixture
async def running(bot_cfg: Any, services: BotServices, tg: FakeTelegram) -> AsyncIterator[Any]:
    app = build_application(bot_cfg, services, flush_interval=None)
    async with running_application(app, poll_timeout=1):
        yield app


async def test_backtest_with_minutes_period_runs(
    running: Any, tg: FakeTelegram, services: BotServices, bot_cfg: Any, factory: Any
) -> None:
    _history(factory)
    services.service.run_backtest_for_chat = make_backtest_runner(bot_cfg, factory)
    await say(tg, "/backtest BTC/USDT fixed_hold 600m", chat_id=ADMIN)
    await tg.wait_for(lambda: tg.calls("sendPhoto"), timeout=60)
    final = tg.calls("editMessageText")[-1].params["text"]
    assert final.startswith("Backtest fixed_hold") and 9 <= _bars_in(final) <= 10  # 600 minutes of hourly bars


async def test_backtests_beyond_the_queue_are_told_the_bot_is_busy(
    running: Any, tg: FakeTelegram, services: BotServices
) -> None:
    from bot.telegram.limits import ChatGates, ChatLimits

    services.gates = ChatGates(ChatLimits(backtests_running=1, backtests_waiting=1))
    release = threading.Event()
    started: list[str] = []

    def slow(symbol: str, strategy: str | None, period: str | None) -> tuple[str, bytes | None]:
        started.append(symbol)
        release.wait(30)  # a worker thread: the bot keeps answering meanwhile
        return f"{symbol} done", None

    services.service.run_backtest_for_chat = slow
    for symbol in ("BTC/USDT", "ETH/USDT", "SOL/USDT"):
        await say(tg, f"/watch {symbol}", chat_id=ADMIN)
    first = await say(tg, "/backtest BTC/USDT", chat_id=ADMIN)
    await tg.wait_for(lambda: started == ["BTC/USDT"])
    second = await say(tg, "/backtest ETH/USDT", chat_id=MEMBER)
    third = await say(tg, "/backtest SOL/USDT", chat_id=GROUP, user_id=ADMIN, chat_type="group")
    assert first[0].startswith("⏳ Backtesting BTC/USDT")
    assert "queued: 1 ahead" in second[0]
    assert third[0].startswith("The bot is busy: 1 backtests running and 1 waiting")
    assert started == ["BTC/USDT"]  # the second waits for the slot
    release.set()
    await tg.wait_for(lambda: started == ["BTC/USDT", "ETH/USDT"], timeout=30)
    await tg.wait_for(lambda: "ETH/USDT done" in tg.replies_text(MEMBER), timeout=30)
    gate = services.gates.backtests
    await tg.wait_for(lambda: (gate.admitted, gate.active) == (0, 0))
    # the place is free again
    again = await say(tg, "/backtest SOL/USDT", chat_id=GROUP, user_id=ADMIN, chat_type="group")
    assert again[0].startswith("⏳ Backtesting SOL/USDT")


async def test_chart_button_answers_busy_once(running: Any, tg: FakeTelegram, services: BotServices) -> None:
    from bot.telegram.limits import ChatGates, ChatLimits

    services.gates = ChatGates(ChatLimits(charts_running=1, charts_waiting=0))
    ticket = services.gates.charts.admit()  # a chart in flight takes the only place
    try:
        await say(tg, "/watch BTC/USDT", chat_id=ADMIN)
        [reply] = await say(tg, "/chart BTC/USDT", chat_id=ADMIN)
        assert reply.startswith("The bot is busy: 0 charts running and 1 waiting")
    finally:
        ticket.release()
    assert services.gates.charts.admitted == 0


@pytest.mark.parametrize("value", ["1e-320", "0", "5e-324", "1e-7"])
async def test_threshold_below_the_floor_is_refused(running: Any, tg: FakeTelegram, factory: Any, value: str) -> None:
    [reply] = await say(tg, f"/threshold * zscore {value}", chat_id=ADMIN)
    assert f"threshold {value!r} out of range" in reply
    with factory() as s:
        assert list(s.scalars(select(ThresholdOverride))) == []


async def test_threshold_at_the_floor_is_stored(running: Any, tg: FakeTelegram, factory: Any) -> None:
    [reply] = await say(tg, "/threshold * zscore 1e-6", chat_id=ADMIN)
    assert reply == "Threshold for every symbol / zscore set to 1e-06."
