"""Work that outlives one update: sending a chart, running a backtest with a progress message.

Shared by the commands (``/chart``, ``/backtest``) and the alert buttons. A
backtest runs as an Application task (errors reach the one error handler),
at most one per chat, and edits its progress message every few seconds.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from telegram import Update

from bot.telegram.context import CustomContext
from core.errors import BotError, InputError

__all__ = ["BACKTEST_PROGRESS_EVERY_S", "send_chart", "start_backtest"]

BACKTEST_PROGRESS_EVERY_S = 5.0


async def send_chart(update: Update, context: CustomContext, symbol: str, period: timedelta) -> None:
    """Render (in a worker thread, inside the service) and send a chart of ``symbol``."""
    png = await context.service.chart(symbol, period)
    chat = update.effective_chat
    assert chat is not None
    await context.bot.send_photo(chat.id, photo=png, caption=f"{symbol}, last {period.days or period}")


def start_backtest(
    update: Update, context: CustomContext, symbol: str, strategy: str | None, period: str | None
) -> None:
    """Start a backtest task for this chat, or refuse if one is still running."""
    chat = update.effective_chat
    assert chat is not None
    running = context.services.background
    if any(getattr(t, "chat_id", None) == chat.id and not t.done() for t in running):
        raise InputError("A backtest is already running in this chat; wait for it to finish.")
    task = context.application.create_task(
        _run_backtest(context, chat.id, symbol, strategy, period), update=update, name=f"backtest-{chat.id}"
    )
    task.chat_id = chat.id  # type: ignore[attr-defined]
    running.add(task)
    task.add_done_callback(running.discard)


async def _run_backtest(
    context: CustomContext, chat_id: int, symbol: str, strategy: str | None, period: str | None
) -> None:
    label = f"Backtesting {symbol}" + (f" ({strategy})" if strategy else "")
    progress = await context.bot.send_message(chat_id, f"⏳ {label}…")
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
