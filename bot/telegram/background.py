"""Work that outlives one update: sending a chart, running a backtest with a progress message.

Shared by the commands (``/chart``, ``/backtest``) and the alert buttons. A
backtest runs as an Application task (errors reach the one error handler),
at most one per chat, and edits its progress message every few seconds.
Both pass the process-wide gates of :mod:`bot.telegram.limits`: a few run at
once, a few more wait in line (and say so), everyone else is told the bot is
busy.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from telegram import Update

from bot.telegram.context import CustomContext
from bot.telegram.limits import Ticket
from core.errors import BotError, InputError

__all__ = ["BACKTEST_PROGRESS_EVERY_S", "describe_period", "send_chart", "start_backtest"]

BACKTEST_PROGRESS_EVERY_S = 5.0


def describe_period(period: timedelta) -> str:
    """``7 days``, ``1 day``, ``12 hours``, ``30 minutes``: a chart's span with its unit."""
    seconds = int(period.total_seconds())
    for unit, size in (("week", 7 * 86_400), ("day", 86_400), ("hour", 3_600), ("minute", 60)):
        if seconds >= size and seconds % size == 0 and not (unit == "week" and seconds // size < 2):
            n = seconds // size
            return f"{n} {unit}{'s' if n != 1 else ''}"
    return f"{seconds} seconds"


async def send_chart(
    update: Update,
    context: CustomContext,
    symbol: str,
    period: timedelta,
    *,
    market: tuple[str, str] | None = None,
    ticket: Ticket | None = None,
) -> None:
    """Render (in a worker thread, inside the service) and send a chart of ``symbol``, through the chart gate.

    ``market`` = (exchange, timeframe) charts that series whether or not it is still watched (an alert's button);
    ``ticket``: a place the caller already took (``gates.charts.admit()``), so it could answer first.
    """
    exchange, timeframe = market if market is not None else (None, None)
    gates = context.services.gates
    async with ticket or gates.charts.admit():
        png, timeframe = await context.service.chart_with_timeframe(
            symbol, period, exchange=exchange, timeframe=timeframe, max_bars=gates.limits.chart_max_bars
        )
    chat = update.effective_chat
    assert chat is not None
    await context.bot.send_photo(chat.id, photo=png, caption=f"{symbol} {timeframe}, last {describe_period(period)}")


def start_backtest(
    update: Update, context: CustomContext, symbol: str, strategy: str | None, period: str | None
) -> None:
    """Start a backtest task for this chat; refuse if one is still running here or every place is taken."""
    chat = update.effective_chat
    assert chat is not None
    running = context.services.background
    if any(getattr(t, "chat_id", None) == chat.id and not t.done() for t in running):
        raise InputError("A backtest is already running in this chat; wait for it to finish.")
    ticket = context.services.gates.backtests.admit()  # raises Busy: nothing started, nothing to undo
    task = context.application.create_task(
        _run_backtest(context, chat.id, symbol, strategy, period, ticket), update=update, name=f"backtest-{chat.id}"
    )
    task.chat_id = chat.id  # type: ignore[attr-defined]
    running.add(task)
    task.add_done_callback(running.discard)
    task.add_done_callback(lambda _t: ticket.release())  # whatever happens to the task, the place is given back


async def _run_backtest(
    context: CustomContext, chat_id: int, symbol: str, strategy: str | None, period: str | None, ticket: Ticket
) -> None:
    label = f"Backtesting {symbol}" + (f" ({strategy})" if strategy else "")
    queued = f" (queued: {ticket.ahead} ahead)" if ticket.ahead else ""
    progress = await context.bot.send_message(chat_id, f"⏳ {label}…{queued}")
    async with ticket:
        await _backtest_with_progress(context, progress, label, symbol, strategy, period)


async def _backtest_with_progress(
    context: CustomContext, progress: Any, label: str, symbol: str, strategy: str | None, period: str | None
) -> None:
    chat_id = progress.chat_id
    job = asyncio.ensure_future(context.service.backtest(symbol, strategy, period))
    waited = 0.0
    while True:
        done, _ = await asyncio.wait({job}, timeout=BACKTEST_PROGRESS_EVERY_S)
        if done:
            break
        waited += BACKTEST_PROGRESS_EVERY_S
        await progress.edit_text(f"⏳ {label}… {waited:.0f} s" if waited >= 1 else f"⏳ {label}… {waited:.1f} s")
    try:
        text, png = job.result()
    except BotError as err:
        await progress.edit_text(f"Backtest failed: {err}")
        return
    await progress.edit_text(text[:4000])
    if png:
        await context.bot.send_photo(chat_id, photo=png, caption=f"{symbol} equity")
