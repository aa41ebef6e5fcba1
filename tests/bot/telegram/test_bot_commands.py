"""The real Application against the fake Bot API: commands in, replies and database rows out."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import select

from bot.telegram.application import REFUSAL, build_application, running_application
from bot.telegram.context import BotServices
from bot.telegram.handlers import COMMANDS
from storage.models import Chat, ThresholdOverride, WatchlistEntry
from tests.bot.telegram.conftest import ADMIN, GROUP, MEMBER, STRANGER
from tests.bot.telegram.helpers import candles, say, store
from tests.fakes.telegram import FakeTelegram


@pytest.fixture
async def running(bot_cfg: Any, services: BotServices, tg: FakeTelegram) -> AsyncIterator[Any]:
    app = build_application(bot_cfg, services, flush_interval=None)
    async with running_application(app, poll_timeout=1):
        yield app


def _rows(factory: Any, model: Any) -> list[Any]:
    with factory() as s:
        return list(s.scalars(select(model)))


async def test_bot_startup_registers_every_command(running: Any, tg: FakeTelegram) -> None:
    assert [c["command"] for c in tg.commands] == [c.name for c in COMMANDS]
    assert tg.calls("getMe") and tg.calls("deleteWebhook")
    replies = await say(tg, "/help", chat_id=ADMIN)
    for cmd in COMMANDS:
        assert cmd.usage in replies[0]


async def test_watch_adds_validated_symbol_and_list_shows_it(running: Any, tg: FakeTelegram, factory: Any) -> None:
    assert await say(tg, "/watch eth/usdt 4h", chat_id=ADMIN) == ["Now watching ETH/USDT 4h on binance."]
    assert await say(tg, "/watch ETH/USDT 4h", chat_id=ADMIN) == ["Already watching ETH/USDT 4h on binance."]
    [entry] = _rows(factory, WatchlistEntry)
    assert (entry.exchange, entry.symbol, entry.timeframe, entry.added_by) == ("binance", "ETH/USDT", "4h", ADMIN)
    reply = await say(tg, "/list", chat_id=MEMBER)
    assert "ETH/USDT 4h (binance)" in reply[0]


async def test_watch_unknown_symbol_answers_with_suggestions(running: Any, tg: FakeTelegram, factory: Any) -> None:
    [reply] = await say(tg, "/watch ETH/USDC", chat_id=ADMIN)
    assert "ETH/USDC is not listed on binance" in reply
    assert "Did you mean" in reply and "ETH/USDT" in reply
    assert _rows(factory, WatchlistEntry) == []


async def test_stranger_gets_one_refusal_and_changes_nothing(running: Any, tg: FakeTelegram, factory: Any) -> None:
    assert await say(tg, "/watch BTC/USDT", chat_id=STRANGER) == [REFUSAL]
    assert await say(tg, "/mute 1h", chat_id=-999, user_id=ADMIN, chat_type="group") == [REFUSAL]
    tg.push_callback("v1:m:1", chat_id=STRANGER, user_id=STRANGER)
    await tg.wait_for(lambda: tg.calls("answerCallbackQuery"))
    assert tg.calls("answerCallbackQuery")[-1].params["text"] == REFUSAL
    assert _rows(factory, WatchlistEntry) == [] and _rows(factory, Chat) == []


async def test_member_cannot_change_state(running: Any, tg: FakeTelegram, factory: Any) -> None:
    assert await say(tg, "/watch BTC/USDT", chat_id=MEMBER) == ["Only an admin can do that."]
    assert await say(tg, "/threshold BTC/USDT zscore 5", chat_id=MEMBER) == ["Only an admin can change that."]
    assert _rows(factory, WatchlistEntry) == [] and _rows(factory, ThresholdOverride) == []
    # showing is fine for members
    assert "No threshold overrides" in (await say(tg, "/threshold", chat_id=MEMBER))[0]


async def test_group_commands_addressed_to_the_bot(running: Any, tg: FakeTelegram, factory: Any) -> None:
    reply = await say(tg, f"/watch@{tg.username} SOL/USDT", chat_id=GROUP, user_id=ADMIN, chat_type="supergroup")
    assert reply == ["Now watching SOL/USDT 1h on binance."]
    before = len(tg.requests)
    tg.push_message("/watch@other_bot DOGE/USDT", chat_id=GROUP, user_id=ADMIN, chat_type="supergroup")
    tg.push_message("/list", chat_id=GROUP, user_id=MEMBER, chat_type="supergroup")
    await tg.wait_for(lambda: any(r.method == "sendMessage" for r in tg.requests[before:]))
    assert [e.symbol for e in _rows(factory, WatchlistEntry)] == ["SOL/USDT"]
    assert "DOGE" not in tg.replies_text(GROUP)[-1]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/watch", "Usage: /watch SYMBOL [TIMEFRAME] [EXCHANGE]"),
        ("/watch BTCUSDT", "bad symbol 'BTCUSDT'"),
        ("/watch BTC/USDT 7x", "bad timeframe '7x'"),
        ("/watch BTC/USDT 1h kraken", "exchange 'kraken' is not configured"),
        ("/threshold BTC/USDT zscore -3", "out of range"),
        ("/threshold BTC/USDT zscore nan", "out of range"),
        ("/threshold BTC/USDT nosuch 3", "unknown detector 'nosuch'"),
        ("/events BTC/USDT 5000", "count 5000 out of range"),
        ("/mute 400d", "too long"),
        ("/watch " + "A" * 40 + "/USDT", "too long"),
        ("/events " + "x " * 150, "message too long"),
        ("/frobnicate now", "Unknown command /frobnicate"),
        ("/chart BTC/USDT", "BTC/USDT is not on the watchlist"),
        ("/detectors BTC/USDT zscore maybe", "expected on or off"),
    ],
)
async def test_malformed_input_gets_reason_and_usage(
    running: Any, tg: FakeTelegram, factory: Any, text: str, expected: str
) -> None:
    [reply] = await say(tg, text, chat_id=ADMIN)
    assert expected in reply
    assert "Traceback" not in reply
    assert _rows(factory, WatchlistEntry) == [] and _rows(factory, ThresholdOverride) == []


async def test_threshold_and_detectors_are_stored_per_symbol(running: Any, tg: FakeTelegram, factory: Any) -> None:
    assert await say(tg, "/threshold BTC/USDT zscore 5.5", chat_id=ADMIN) == [
        "Threshold for BTC/USDT / zscore set to 5.5."
    ]
    assert await say(tg, "/detectors * pump_dump off", chat_id=ADMIN) == ["pump_dump is now off for every symbol."]
    rows = {(r.symbol, r.detector): (r.value, r.enabled) for r in _rows(factory, ThresholdOverride)}
    assert rows == {("BTC/USDT", "zscore"): (5.5, None), ("", "pump_dump"): (None, False)}
    [shown] = await say(tg, "/detectors BTC/USDT", chat_id=MEMBER)
    assert "pump_dump: switched off in chat" in shown and "zscore: on, threshold 5.5 (override)" in shown
    [shown] = await say(tg, "/threshold BTC/USDT", chat_id=MEMBER)
    assert "BTC/USDT / zscore: 5.5" in shown


async def test_mute_unmute_events_and_status(running: Any, tg: FakeTelegram, factory: Any) -> None:
    [reply] = await say(tg, "/mute 2h", chat_id=ADMIN)
    assert reply.startswith("Alerts muted here until")
    with factory() as s:
        assert s.get(Chat, ADMIN).muted_until is not None
    assert await say(tg, "/unmute", chat_id=ADMIN) == ["Alerts unmuted."]
    with factory() as s:
        assert s.get(Chat, ADMIN).muted_until is None

    await say(tg, "/watch BTC/USDT", chat_id=ADMIN)
    store(factory, "BTC/USDT", candles(48, spike_at=40), [(40, "zscore", 9.0)])
    [events] = await say(tg, "/events BTC/USDT 5", chat_id=MEMBER)
    assert "BTC/USDT 1h zscore: 9 / 4" in events
    [status] = await say(tg, "/status", chat_id=MEMBER)
    assert "no cycle has run yet" in status and "BTC/USDT 1h: last bar 2024-01-02 23:00 UTC" in status


async def test_chart_command_sends_a_png(running: Any, tg: FakeTelegram, factory: Any, services: BotServices) -> None:
    await say(tg, "/watch BTC/USDT", chat_id=ADMIN)
    frame = candles(100, spike_at=90)
    store(factory, "BTC/USDT", frame, [(90, "zscore", 9.0)])
    services.service.now = lambda: frame.index[-1].to_pydatetime()
    await say(tg, "/chart BTC/USDT 3d", chat_id=ADMIN)
    [photo] = tg.calls("sendPhoto")
    assert photo.files["photo"].startswith(b"\x89PNG\r\n\x1a\n")


async def test_backtest_runs_in_background_and_edits_progress(
    running: Any, tg: FakeTelegram, services: BotServices, monkeypatch: Any
) -> None:
    import time

    import bot.telegram.background
    from tests.bot.telegram.helpers import tiny_png

    monkeypatch.setattr(bot.telegram.background, "BACKTEST_PROGRESS_EVERY_S", 0.1)
    calls = []

    def run_backtest_for_chat(symbol: str, strategy: str | None, period: str | None) -> tuple[str, bytes]:
        calls.append((symbol, strategy, period))
        time.sleep(0.5)  # a worker thread: the bot keeps polling meanwhile
        return f"{symbol}: 3 trades, return +1.2 %", tiny_png()

    services.service.run_backtest_for_chat = run_backtest_for_chat
    await say(tg, "/watch BTC/USDT", chat_id=ADMIN)
    await say(tg, "/backtest BTC/USDT fixed_hold 30d", chat_id=ADMIN, n=3)
    assert calls == [("BTC/USDT", "fixed_hold", "30d")]
    await tg.wait_for(lambda: tg.calls("sendPhoto"))
    edits = [r.params["text"] for r in tg.calls("editMessageText")]
    assert len(edits) >= 3 and edits[0].startswith("⏳ Backtesting BTC/USDT (fixed_hold)… 0.1 s")
    assert edits[-1] == "BTC/USDT: 3 trades, return +1.2 %"
    assert tg.calls("sendPhoto")[-1].params["caption"] == "BTC/USDT equity"


async def test_handler_crash_replies_briefly_without_traceback(
    running: Any, tg: FakeTelegram, services: BotServices, caplog: Any
) -> None:
    def broken(*_: Any) -> Any:
        raise RuntimeError("database exploded at /secret/path")

    services.service.run_backtest_for_chat = broken
    await say(tg, "/watch BTC/USDT", chat_id=ADMIN)
    replies = await say(tg, "/backtest BTC/USDT", chat_id=ADMIN, n=2)
    assert replies[-1] == "Sorry, something went wrong. The error has been logged."
    assert "secret" not in " ".join(tg.replies_text())
    assert "database exploded" in caplog.text


async def test_status_reports_cycles_errors_and_models(running: Any, tg: FakeTelegram, factory: Any) -> None:
    from datetime import UTC, datetime, timedelta

    from storage.models import Cycle, ModelRecord

    now = datetime.now(UTC)
    with factory.begin() as s:
        s.add(
            Cycle(
                timeframe="1h",
                started_at=now - timedelta(minutes=5),
                finished_at=now - timedelta(minutes=4),
                until_ms=int((now - timedelta(minutes=5, seconds=12)).timestamp() * 1000),
                symbols=3,
                candles_added=3,
                events=1,
                errors=1,
                last_error="binance: timeout on SOL/USDT",
            )
        )
        for v in (1, 2):
            s.add(ModelRecord(detector="lstm_autoencoder", scope="shared", version=v, path=f"models/{v}"))
    [status] = await say(tg, "/status", chat_id=MEMBER)
    assert "Loop: last 1h cycle" in status and "finished in 60.0 s; 3 symbols, 3 candles, 1 events, 1 errors" in status
    assert "Lag: started 12 s after its bar closed, results out 72 s after" in status
    assert "Last error: binance: timeout on SOL/USDT" in status
    assert "Last 24 h: 1 cycles, 1 errors" in status
    assert "Models: lstm_autoencoder (shared) v2" in status


async def test_bot_removed_from_a_group_marks_it_inactive(running: Any, tg: FakeTelegram, factory: Any) -> None:
    tg.push_membership("kicked", chat_id=GROUP, user_id=ADMIN)
    await tg.wait_idle()

    def active() -> bool | None:
        with factory() as s:
            chat = s.get(Chat, GROUP)
            return None if chat is None else chat.active

    await tg.wait_for(lambda: active() is False)
    tg.push_membership("member", chat_id=GROUP, user_id=ADMIN)
    await tg.wait_for(lambda: active() is True)
    assert not tg.calls("sendMessage")  # membership changes are not answered


async def test_membership_changes_in_unknown_chats_are_not_recorded(
    running: Any, tg: FakeTelegram, factory: Any
) -> None:
    tg.push_membership("kicked", chat_id=-4242, user_id=STRANGER)
    await tg.wait_idle()
    await say(tg, "/list", chat_id=ADMIN)  # the update after it has been handled
    assert _rows(factory, Chat) == []


async def test_mute_and_unmute_one_symbol(running: Any, tg: FakeTelegram, factory: Any) -> None:
    from storage.models import SymbolMute

    [reply] = await say(tg, "/mute BTC/USDT 2h", chat_id=ADMIN)
    assert reply.startswith("BTC/USDT muted here until")
    [reply] = await say(tg, "/mute eth-usdt", chat_id=ADMIN)  # default: one hour
    assert reply.startswith("ETH/USDT muted here until")
    assert {(m.chat_id, m.symbol) for m in _rows(factory, SymbolMute)} == {(ADMIN, "BTC/USDT"), (ADMIN, "ETH/USDT")}
    with factory() as s:
        chat = s.get(Chat, ADMIN)
        assert chat is None or chat.muted_until is None  # the chat as a whole is not muted
    assert await say(tg, "/unmute BTC/USDT", chat_id=ADMIN) == ["BTC/USDT unmuted here."]
    assert [m.symbol for m in _rows(factory, SymbolMute)] == ["ETH/USDT"]
    assert await say(tg, "/mute BTC/USDT 2h 3h", chat_id=ADMIN) == ["Usage: /mute [SYMBOL] [DURATION e.g. 2h]"]


async def test_threshold_override_can_be_removed_from_chat(running: Any, tg: FakeTelegram, factory: Any) -> None:
    await say(tg, "/threshold BTC/USDT zscore 5.5", chat_id=ADMIN)
    assert await say(tg, "/threshold BTC/USDT zscore off", chat_id=ADMIN) == [
        "Threshold override for BTC/USDT / zscore removed: the detector's own threshold applies."
    ]
    assert _rows(factory, ThresholdOverride) == []
    assert await say(tg, "/threshold BTC/USDT zscore off", chat_id=ADMIN) == [
        "There was no threshold override for BTC/USDT / zscore."
    ]
    assert "No threshold overrides" in (await say(tg, "/threshold", chat_id=MEMBER))[0]


async def test_threshold_refuses_markets_neither_watched_nor_listed(
    running: Any, tg: FakeTelegram, factory: Any
) -> None:
    [reply] = await say(tg, "/threshold FOO/USDT zscore 5", chat_id=ADMIN)
    assert "FOO/USDT is neither on the watchlist nor listed on binance" in reply
    [reply] = await say(tg, "/detectors FOO/USDT zscore off", chat_id=ADMIN)
    assert "FOO/USDT is neither on the watchlist nor listed on binance" in reply
    assert _rows(factory, ThresholdOverride) == []
    # listed on the exchange but not watched (yet): fine, as is every symbol (*)
    assert await say(tg, "/threshold SOL/USDT zscore 5", chat_id=ADMIN) == ["Threshold for SOL/USDT / zscore set to 5."]


async def test_chart_caption_says_the_period_with_its_unit(
    running: Any, tg: FakeTelegram, factory: Any, services: BotServices
) -> None:
    await say(tg, "/watch BTC/USDT", chat_id=ADMIN)
    frame = candles(100)
    store(factory, "BTC/USDT", frame, [])
    services.service.now = lambda: frame.index[-1].to_pydatetime()
    assert await say(tg, "/chart BTC/USDT 3d", chat_id=ADMIN) == ["BTC/USDT 1h, last 3 days"]
    assert await say(tg, "/chart BTC/USDT 12h", chat_id=ADMIN) == ["BTC/USDT 1h, last 12 hours"]
