"""Telegram command and button handlers: parse, call the service, format. Nothing else.

Each handler reads its arguments through ``bot/inputs.py`` (length caps,
symbol regex, numeric ranges), calls one :class:`~bot.service.BotService`
method and replies in plain text. A user error (``InputError``) becomes the
reason plus the command's usage line; anything unexpected goes to the single
error handler in ``bot/telegram/application.py``, which replies with a short apology and
never a stack trace.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from telegram import Update
from telegram.constants import ParseMode

from bot.inputs import (
    parse_count,
    parse_detector,
    parse_duration,
    parse_exchanges,
    parse_symbol,
    parse_threshold_value,
    parse_timeframe,
    split_args,
)
from bot.masking import mask
from bot.telegram.background import send_chart, start_backtest
from bot.telegram.context import CustomContext
from bot.telegram.describe import describe_detector, describe_status
from bot.telegram.limits import CHAT_LIMITS
from core.errors import BadSymbolError, BotError, InputError

__all__ = ["COMMANDS", "Command", "Usage", "on_unknown_command"]

log = logging.getLogger(__name__)
Handler = Callable[[Update, CustomContext], Awaitable[None]]


class Usage(InputError):
    """The arguments do not fit the command: answer with its usage line."""


@dataclass(frozen=True)
class Command:
    name: str
    callback: Handler
    description: str
    usage: str
    admin: bool = False


async def _reply(update: Update, text: str, *, html_mode: bool = False) -> Any:
    msg = update.effective_message
    assert msg is not None
    return await msg.reply_text(mask(text)[:4000], parse_mode=ParseMode.HTML if html_mode else None)


def _args(update: Update) -> list[str]:
    msg = update.effective_message
    return split_args(msg.text if msg else None)


def _require_admin(update: Update, context: CustomContext) -> None:
    user = update.effective_user
    context.access.require_admin(user.id if user else None, "change that")


def _ts(ms: int | None) -> str:
    if ms is None:
        return "never"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")


# -- commands -----------------------------------------------------------------------------------
async def cmd_start(update: Update, context: CustomContext) -> None:
    """Greet and record the chat."""
    chat = update.effective_chat
    if chat is not None:
        await context.service.touch_chat(chat.id, chat.title or chat.username)
    await _reply(update, "vigil watches crypto markets and alerts here on anomalies.\nSend /help for the commands.")


async def cmd_help(update: Update, context: CustomContext) -> None:
    """List every command with its usage."""
    lines = [f"{c.usage} — {c.description}{' (admin)' if c.admin else ''}" for c in COMMANDS]
    await _reply(update, "\n".join(lines))


async def cmd_watch(update: Update, context: CustomContext) -> None:
    """Validate a market against the exchange and add it to the watchlist (fetching its history at once);
    or a whole asset group.

    ``/watch BTC/USDT binance,okx,kraken [1h]`` watches one asset on several exchanges as a
    group; ``/watch BTC`` (no slash) watches the config's group of that name.
    """
    args = _args(update)
    if not 1 <= len(args) <= 3:
        raise Usage("")
    user = update.effective_user
    uid = user.id if user else None
    if len(args) == 1 and context.service.is_group_name(args[0]):
        entries = await context.service.watch_named_group(args[0], user_id=uid)
        await _reply(update, _group_reply(entries))
        return
    symbol = parse_symbol(args[0])
    rest = args[1:]
    venues = next((a for a in rest if "," in a), None)
    if venues is not None:
        others = [a for a in rest if a != venues]
        timeframe = parse_timeframe(others[0]) if others else None
        entries = await context.service.watch_group(symbol, parse_exchanges(venues), timeframe, user_id=uid)
        await _reply(update, _group_reply(entries))
        return
    timeframe = parse_timeframe(args[1]) if len(args) > 1 else None
    exchange = args[2] if len(args) > 2 else None
    try:
        entry, created = await context.service.watch(symbol, timeframe, exchange, user_id=user.id if user else None)
    except BadSymbolError as err:
        hint = [s for s in getattr(err, "suggestions", None) or [] if s != symbol]
        extra = f"\nDid you mean: {', '.join(hint)}?" if hint and "did you mean" not in str(err).lower() else ""
        await _reply(update, f"{err}{extra}")
        return
    verb = "Now watching" if created else "Already watching"
    text = f"{verb} {entry.symbol} {entry.timeframe} on {entry.exchange}."
    if not (created and context.service.can_backfill):
        await _reply(update, text)
        return
    sent = await _reply(update, f"{text} Fetching its recent history…")
    context.application.create_task(_backfill_and_edit(context, sent, entry, text), update=update)


async def _backfill_and_edit(context: CustomContext, sent: Any, entry: Any, text: str) -> None:
    """Fetch the new market's history, then edit the /watch answer to say how it went."""
    try:
        bars = await context.service.backfill(entry)
    except BotError as err:
        await sent.edit_text(f"{text} Its history could not be fetched yet ({err}); the next cycle tries again."[:4000])
        return
    await sent.edit_text(f"{text} {bars} bars of history stored: /chart {entry.symbol} works now.")


def _group_reply(entries: list[Any]) -> str:
    first = entries[0][0]
    venues = ", ".join(f"{e.exchange} ({e.symbol})" for e, _ in entries)
    fresh = sum(1 for _, created in entries if created)
    return f"Watching group {first.group_name} {first.timeframe} on {venues} ({fresh} new)."


async def cmd_unwatch(update: Update, context: CustomContext) -> None:
    """Remove a market from the watchlist (its stored data stays)."""
    args = _args(update)
    if not 1 <= len(args) <= 2:
        raise Usage("")
    symbol = parse_symbol(args[0])
    timeframe = parse_timeframe(args[1]) if len(args) > 1 else None
    n = await context.service.unwatch(symbol, timeframe)
    await _reply(update, f"Stopped watching {symbol}." if n else f"{symbol} was not on the watchlist.")


def _origin(entry: Any) -> str:
    """Where a watchlist entry came from, for /list."""
    if entry.source == "config":
        return "from the config file"
    if entry.source == "chat":
        return f"added in chat{f' by {entry.added_by}' if entry.added_by else ''} {entry.created_at:%Y-%m-%d}"
    if entry.source == "cli":
        return f"added with vigil watch {entry.created_at:%Y-%m-%d}"
    return "origin not recorded"


async def cmd_list(update: Update, context: CustomContext) -> None:
    """Show the watchlist and where each entry came from."""
    if _args(update):
        raise Usage("")
    entries = await context.service.watchlist()
    if not entries:
        await _reply(update, "The watchlist is empty. Add a market with /watch BTC/USDT")
        return
    lines = [
        f"• {e.symbol} {e.timeframe} ({e.exchange})"
        + (f" [group {e.group_name}]" if e.group_name else "")
        + f", {_origin(e)}"
        for e in entries
    ]
    await _reply(update, "Watching:\n" + "\n".join(lines))


def _scope_symbol(raw: str) -> str:
    return "" if raw == "*" else parse_symbol(raw)


async def cmd_threshold(update: Update, context: CustomContext) -> None:
    """Show threshold overrides, or set one for a symbol and detector."""
    args = _args(update)
    if len(args) > 3:
        raise Usage("")
    if len(args) == 3:
        _require_admin(update, context)
        symbol = _scope_symbol(args[0])
        detector = parse_detector(args[1], context.service.known_detectors())
        scope = f"{symbol or 'every symbol'} / {detector}"
        if args[2].lower() in ("off", "clear", "none"):
            if await context.service.clear_threshold(symbol, detector):
                await _reply(update, f"Threshold override for {scope} removed: the detector's own threshold applies.")
            else:
                await _reply(update, f"There was no threshold override for {scope}.")
            return
        value = parse_threshold_value(args[2])
        await context.service.set_threshold(symbol, detector, value)
        await _reply(update, f"Threshold for {scope} set to {value:g}.")
        return
    shown = _scope_symbol(args[0]) if args else ""
    rows = await context.service.thresholds(shown or None)
    if len(args) == 2:
        detector = parse_detector(args[1])
        rows = [r for r in rows if r[1] in (detector, "*")]
    rows = [r for r in rows if r[2] is not None]
    if not rows:
        await _reply(update, "No threshold overrides: the detectors' own thresholds apply.")
        return
    await _reply(update, "Threshold overrides:\n" + "\n".join(f"• {s} / {d}: {v:g}" for s, d, v, _ in rows))


async def cmd_detectors(update: Update, context: CustomContext) -> None:
    """Each detector's real state here and globally, or switch one on or off for a symbol."""
    args = _args(update)
    if len(args) not in (0, 1, 3):
        raise Usage("")
    if len(args) == 3:
        _require_admin(update, context)
        symbol = _scope_symbol(args[0])
        detector = parse_detector(args[1], context.service.known_detectors())
        switch = args[2].lower()
        if switch not in ("on", "off"):
            raise InputError(f"expected on or off, got {args[2][:8]!r}")
        if switch == "on" and detector not in context.service.runnable_detectors():
            raise InputError(
                f"{detector} is not enabled in the config, so a switch cannot make it run; "
                f"add [detectors.{detector}] (enabled = true) and restart"
            )
        await context.service.set_detector(symbol, detector, switch == "on")
        await _reply(update, f"{detector} is now {switch} for {symbol or 'every symbol'}.")
        return
    shown = _scope_symbol(args[0]) if args else ""
    chat = update.effective_chat
    report = await context.service.detectors(shown or None, chat.id if chat else None)
    head = f"Detectors for {shown}:" if shown else "Detectors:"
    lines = [head] + [f"• {describe_detector(d, report.loop_here)}" for d in report.detectors]
    if report.chat_muted_until is not None:
        lines.append(f"Alerts are muted in this chat until {report.chat_muted_until:%Y-%m-%d %H:%M} UTC.")
    for sym, until in sorted(report.symbols_muted.items()):
        lines.append(f"{sym} is muted in this chat until {until:%Y-%m-%d %H:%M} UTC.")
    if report.available:
        lines.append("Not in the config (add [detectors.NAME] to use): " + ", ".join(report.available))
    await _reply(update, "\n".join(lines))


async def cmd_events(update: Update, context: CustomContext) -> None:
    """Show the latest events, optionally for one symbol."""
    args = _args(update)
    if len(args) > 2:
        raise Usage("")
    symbol, n = None, 10
    for arg in args:
        if arg.isdigit():
            n = parse_count(arg, high=CHAT_LIMITS.events_max)
        else:
            symbol = parse_symbol(arg)
    events = await context.service.events(symbol, n)
    if not events:
        await _reply(update, "No events yet.")
        return
    lines = [
        f"• {_ts(e.bar_ts)} {e.symbol} {e.timeframe} {e.detector}: {e.score:.3g} / {e.threshold:.3g} ({e.severity})"
        for e in events
    ]
    await _reply(update, "Latest events:\n" + "\n".join(lines))


async def cmd_chart(update: Update, context: CustomContext) -> None:
    """Send a chart of a watched symbol."""
    args = _args(update)
    if not 1 <= len(args) <= 2:
        raise Usage("")
    symbol = parse_symbol(args[0])
    period = parse_duration(args[1], maximum=CHAT_LIMITS.chart_max_period) if len(args) > 1 else timedelta(days=7)
    await send_chart(update, context, symbol, period)


async def cmd_backtest(update: Update, context: CustomContext) -> None:
    """Backtest trading on a symbol's events, in the background."""
    args = _args(update)
    if not 1 <= len(args) <= 3:
        raise Usage("")
    symbol = parse_symbol(args[0])
    strategy = parse_detector(args[1]) if len(args) > 1 else None  # same shape: lower-case identifier
    period = args[2] if len(args) > 2 else None
    if period is not None:  # the runner defaults to CHAT_LIMITS.backtest_default_period
        parse_duration(period, maximum=CHAT_LIMITS.backtest_max_period)
    start_backtest(update, context, symbol, strategy, period)


def _looks_like_symbol(raw: str) -> bool:
    return "/" in raw or "-" in raw


async def cmd_mute(update: Update, context: CustomContext) -> None:
    """Mute alerts in this chat for a while: all of them, or one symbol's."""
    args = _args(update)
    if len(args) > 2 or (len(args) == 2 and not _looks_like_symbol(args[0])):
        raise Usage("")
    symbol = parse_symbol(args[0]) if args and _looks_like_symbol(args[0]) else None
    rest = args[1:] if symbol else args
    duration = parse_duration(rest[0]) if rest else timedelta(hours=1)
    chat = update.effective_chat
    assert chat is not None
    if symbol is not None:
        until = await context.service.mute_symbol(chat.id, symbol, duration)
        await _reply(update, f"{symbol} muted here until {until:%Y-%m-%d %H:%M} UTC.")
        return
    until = await context.service.mute(chat.id, duration)
    await _reply(update, f"Alerts muted here until {until:%Y-%m-%d %H:%M} UTC.")


async def cmd_unmute(update: Update, context: CustomContext) -> None:
    """Unmute alerts in this chat: all of them, or one symbol's."""
    args = _args(update)
    if len(args) > 1:
        raise Usage("")
    chat = update.effective_chat
    assert chat is not None
    if args:
        symbol = parse_symbol(args[0])
        was = await context.service.unmute_symbol(chat.id, symbol)
        await _reply(update, f"{symbol} unmuted here." if was else f"{symbol} was not muted here.")
        return
    await context.service.unmute(chat.id)
    await _reply(update, "Alerts unmuted.")


async def cmd_status(update: Update, context: CustomContext) -> None:
    """Loop health, data freshness, detectors, Telegram and the outbox."""
    if _args(update):
        raise Usage("")
    await _reply(update, "\n".join(describe_status(await context.service.status())))


# -- unknown commands --------------------------------------------------------------
async def on_unknown_command(update: Update, context: CustomContext) -> None:
    """A command we do not have (addressed to us): say so, with a pointer to /help."""
    msg = update.effective_message
    if msg is None or not msg.text:
        return
    word = msg.text.split()[0][1:65]
    name, _, target = word.partition("@")
    if target and target.lower() != (context.bot.username or "").lower():
        return  # addressed to another bot in the group
    await _reply(update, f"Unknown command /{html.unescape(name)[:32]}. Send /help for the list.")


COMMANDS: list[Command] = [
    Command("start", cmd_start, "introduction", "/start"),
    Command("help", cmd_help, "this list", "/help"),
    Command(
        "watch",
        cmd_watch,
        "watch a market, or one asset on several exchanges as a group",
        "/watch SYMBOL [TIMEFRAME] [EXCHANGE] | /watch SYMBOL EX1,EX2,EX3 [TIMEFRAME] | /watch GROUP",
        admin=True,
    ),
    Command("unwatch", cmd_unwatch, "stop watching a market", "/unwatch SYMBOL [TIMEFRAME]", admin=True),
    Command("list", cmd_list, "the watchlist", "/list"),
    Command(
        "threshold",
        cmd_threshold,
        "show, set or remove (off) a threshold (admin to change)",
        "/threshold [SYMBOL|*] [DETECTOR] [VALUE|off]",
    ),
    Command("detectors", cmd_detectors, "list, or switch on/off (admin)", "/detectors [SYMBOL|*] [DETECTOR on|off]"),
    Command("events", cmd_events, "latest events", "/events [SYMBOL] [N]"),
    Command("chart", cmd_chart, "chart with events", "/chart SYMBOL [PERIOD e.g. 7d]"),
    Command("backtest", cmd_backtest, "backtest the events", "/backtest SYMBOL [STRATEGY] [PERIOD]"),
    Command("mute", cmd_mute, "mute alerts here (or one symbol's)", "/mute [SYMBOL] [DURATION e.g. 2h]", admin=True),
    Command("unmute", cmd_unmute, "unmute alerts here (or one symbol's)", "/unmute [SYMBOL]", admin=True),
    Command("status", cmd_status, "loop health and data lag", "/status"),
]
