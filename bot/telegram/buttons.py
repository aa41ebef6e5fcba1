"""The inline buttons under an alert: mute 1 h, 7-day chart, backtest, details.

Callback data is validated (``bot.alerts.text.decode_callback``) before anything
else; old, forged or garbled data is answered "This button has expired."
"""

from __future__ import annotations

import logging
from datetime import timedelta

from telegram import Update
from telegram.constants import ParseMode

from bot.alerts.text import CALLBACK_ACTIONS, decode_callback
from bot.telegram.background import send_chart, start_backtest
from bot.telegram.context import CustomContext
from core.errors import BotError

__all__ = ["on_button"]

log = logging.getLogger(__name__)


async def on_button(update: Update, context: CustomContext) -> None:
    """Inline buttons under an alert: mute 1 h, 7-day chart, backtest, details."""
    query = update.callback_query
    assert query is not None
    decoded = decode_callback(query.data)
    if decoded is None:
        await query.answer("This button has expired.")
        return
    action, alert_id = decoded
    user = update.effective_user
    chat = update.effective_chat
    assert chat is not None
    try:
        alert = await context.service.alert(alert_id)
        if action == "m":
            context.access.require_admin(user.id if user else None, "mute")
            until = await context.service.mute_symbol(chat.id, alert.symbol, timedelta(hours=1))
            await query.answer(f"{alert.symbol} muted until {until:%H:%M} UTC.")
        elif action == "c":
            ticket = context.services.gates.charts.admit()  # busy: answered below, before anything was said
            await query.answer(f"Drawing {alert.symbol}, 7 days…")
            await send_chart(update, context, alert.symbol, timedelta(days=7), ticket=ticket)
        elif action == "b":
            start_backtest(update, context, alert.symbol, None, None)
            await query.answer("Backtest started.")
        else:
            text = await context.service.alert_details(alert_id)
            await query.answer()
            await context.bot.send_message(chat.id, text, parse_mode=ParseMode.HTML)
    except BotError as err:
        await query.answer(str(err)[:190])
    log.info("button %s (%s) on alert %s by %s", action, CALLBACK_ACTIONS[action], alert_id, user.id if user else None)
