"""The inline buttons under an alert: mute 1 h, 7-day chart, backtest, details.

Callback data is validated (``bot.alerts.text.decode_callback``) before anything
else; old, forged or garbled data is answered "This button has expired."

Telegram honours one answer per callback query and shows the client a spinner
until it comes, so every query is answered exactly once, whatever happens:
:func:`answer_once` records the answered ids (the error handler asks it too),
and anything to say after the answer (a chart that could not be drawn) goes
to the chat as a message.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from datetime import timedelta

from telegram import CallbackQuery, Update
from telegram.constants import ParseMode

from bot.alerts.text import CALLBACK_ACTIONS, decode_callback
from bot.telegram.background import send_chart, start_backtest
from bot.telegram.context import CustomContext
from core.errors import BotError

__all__ = ["EXPIRED", "answer_once", "on_button"]

log = logging.getLogger(__name__)
EXPIRED = "This button has expired."
_REMEMBERED = 1024  # answered query ids kept (queries older than a few minutes cannot be answered anyway)


def _answered(context: CustomContext) -> OrderedDict[str, None]:
    return context.bot_data.setdefault("answered_queries", OrderedDict())


async def answer_once(context: CustomContext, query: CallbackQuery, text: str | None = None) -> bool:
    """Answer ``query`` unless it was answered already; returns whether this call answered it."""
    seen = _answered(context)
    if query.id in seen:
        return False
    seen[query.id] = None
    while len(seen) > _REMEMBERED:
        seen.popitem(last=False)
    await query.answer(text[:190] if text else None)
    return True


async def on_button(update: Update, context: CustomContext) -> None:
    """Inline buttons under an alert: mute 1 h, 7-day chart, backtest, details."""
    query = update.callback_query
    assert query is not None
    decoded = decode_callback(query.data)
    if decoded is None:
        await answer_once(context, query, EXPIRED)
        return
    action, alert_id = decoded
    user = update.effective_user
    try:
        await _act(update, context, query, action, alert_id)
    except BotError as err:
        if not await answer_once(context, query, str(err)):
            chat = update.effective_chat
            if chat is not None:
                await context.bot.send_message(chat.id, str(err)[:4000])
    finally:
        if query.id not in _answered(context):  # an unexpected error: the error handler logs it, we stop the spinner
            await answer_once(context, query, "Sorry, something went wrong.")
    log.info("button %s (%s) on alert %s by %s", action, CALLBACK_ACTIONS[action], alert_id, user.id if user else None)


async def _act(update: Update, context: CustomContext, query: CallbackQuery, action: str, alert_id: int) -> None:
    user = update.effective_user
    chat = update.effective_chat
    assert chat is not None  # the access guard answered queries without a chat
    alert = await context.service.alert(alert_id)
    if action == "m":
        context.access.require_admin(user.id if user else None, "mute")
        until = await context.service.mute_symbol(chat.id, alert.symbol, timedelta(hours=1))
        await answer_once(context, query, f"{alert.symbol} muted until {until:%H:%M} UTC.")
    elif action == "c":
        ticket = context.services.gates.charts.admit()  # busy: answered by the caller, before anything was said
        await answer_once(context, query, f"Drawing {alert.symbol}, 7 days…")  # answered now: drawing takes a while
        try:
            market = (alert.exchange, alert.timeframe)
            await send_chart(update, context, alert.symbol, timedelta(days=7), market=market, ticket=ticket)
        except BotError as err:
            await context.bot.send_message(chat.id, f"Could not draw {alert.symbol}: {err}"[:4000])
    elif action == "b":
        start_backtest(update, context, alert.symbol, None, None)
        await answer_once(context, query, "Backtest started.")
    else:
        text = await context.service.alert_details(alert_id)
        await answer_once(context, query)
        await context.bot.send_message(chat.id, text, parse_mode=ParseMode.HTML)
