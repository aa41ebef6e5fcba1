"""The Telegram application: python-telegram-bot v22 wiring, nothing clever.

:func:`build_application` returns a configured ``Application`` (API base URL
from config, so a local Bot API server or the tests' fake works;
``AIORateLimiter`` for Telegram's flood limits). ``post_init`` puts the
services into ``bot_data`` and registers the command menu with
``set_my_commands``, both driven by :data:`bot.telegram.handlers.COMMANDS`.

Every update first passes the access guard (group -1): commands and button
presses from chats outside ``telegram.allowed_chat_ids`` (and not an admin's
private chat) get one short refusal and stop there. Plain chatter in groups
is ignored without a word.

``vigil bot`` runs it with ``run_polling`` / ``run_webhook``; the runtime
(``vigil run``) uses :func:`running_application` next to its scheduler.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

from telegram import BotCommand, ChatMember, Update
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationHandlerStop,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    TypeHandler,
    filters,
)

from bot.alerts.dispatcher import make_dispatcher
from bot.masking import mask
from bot.telegram.buttons import EXPIRED, answer_once, on_button
from bot.telegram.context import BotServices, CustomContext, NotAdmin
from bot.telegram.handlers import COMMANDS, Command, Usage, on_unknown_command
from core.config import Config
from core.errors import BotError, ConfigError, InputError

__all__ = ["build_application", "running_application"]

log = logging.getLogger(__name__)
REFUSAL = "Sorry, this bot is private."


async def _guard(update: Update, context: CustomContext) -> None:
    """Stop updates from outside the allowlist, with one short refusal for commands and buttons."""
    if update.my_chat_member is not None:
        try:
            await _membership_changed(update, context)
        finally:
            raise ApplicationHandlerStop  # noqa: B012 - the update stops here even if the bookkeeping failed
    chat, user = update.effective_chat, update.effective_user
    query = update.callback_query
    msg = update.message
    is_command = bool(msg and msg.text and msg.text.startswith("/"))
    if query is not None and chat is None:  # a button on a message we cannot see (inline, deleted): still answered
        await answer_once(context, query, EXPIRED)
        raise ApplicationHandlerStop
    if chat is None or (query is None and not is_command):
        raise ApplicationHandlerStop
    if context.access.chat_allowed(chat.id, chat.type, user.id if user else None):
        return
    log.warning("refused %s from chat %s user %s", "button" if query else "command", chat.id, user.id if user else None)
    try:
        if query is not None:
            await answer_once(context, query, REFUSAL)
        elif msg is not None and msg.text is not None:
            target = msg.text.split()[0].partition("@")[2]
            if not target or target.lower() == (context.bot.username or "").lower():
                await msg.reply_text(REFUSAL)
    except Exception as err:  # noqa: BLE001 - a lost refusal must not let the update through
        # python-telegram-bot hands an update to the next handler group when a handler raises anything
        # but ApplicationHandlerStop: a 5xx on the refusal used to run the outsider's command.
        log.warning("refusal to chat %s not delivered: %s", chat.id, err)
    raise ApplicationHandlerStop


async def _membership_changed(update: Update, context: CustomContext) -> None:
    """The bot was removed from (or re-added to) a chat: stop (or resume) queueing alerts for it.

    The same bookkeeping a 403 triggers, but before the first failed send.
    """
    change = update.my_chat_member
    assert change is not None
    if not context.access.chat_allowed(change.chat.id, change.chat.type, None):
        return  # a chat we never served: nothing to record
    status = change.new_chat_member.status
    if status in (ChatMember.BANNED, ChatMember.LEFT):
        log.warning("removed from chat %s: marking it inactive", change.chat.id)
        await context.service.set_chat_active(change.chat.id, False)
    elif status in (ChatMember.MEMBER, ChatMember.ADMINISTRATOR):
        await context.service.set_chat_active(change.chat.id, True)


def _wrap(cmd: Command) -> Any:
    """Admin check, usage on bad arguments, a one-line reason on user errors."""

    async def handler(update: Update, context: CustomContext) -> None:
        msg = update.effective_message
        assert msg is not None
        user = update.effective_user
        try:
            if cmd.admin:
                context.access.require_admin(user.id if user else None)
            await cmd.callback(update, context)
        except Usage as err:
            reason = f"{mask(str(err))}\n" if str(err) else ""
            await msg.reply_text(f"{reason}Usage: {cmd.usage}")
        except NotAdmin as err:
            await msg.reply_text(str(err))
        except InputError as err:  # errors echo what was typed: a secret pasted into chat is not repeated
            await msg.reply_text(f"{mask(str(err))}\nUsage: {cmd.usage}"[:4000])
        except BotError as err:
            await msg.reply_text(mask(str(err))[:4000])

    handler.__name__ = f"cmd_{cmd.name}"
    handler.__doc__ = cmd.callback.__doc__
    return handler


async def _on_error(update: object, context: CustomContext) -> None:
    """Log the error with its traceback; tell the user only that something went wrong."""
    log.error("handler error on update %s", getattr(update, "update_id", None), exc_info=context.error)
    if isinstance(update, Update):
        if update.callback_query is not None:
            try:
                await answer_once(context, update.callback_query, "Sorry, something went wrong.")
            except Exception:  # noqa: BLE001 - the query may be too old to answer
                pass
        elif update.effective_message is not None:
            await update.effective_message.reply_text("Sorry, something went wrong. The error has been logged.")


async def _flush_job(context: CustomContext) -> None:
    dispatcher = context.services.dispatcher
    if dispatcher is not None:
        await dispatcher.flush()


def build_application(
    cfg: Config, services: BotServices, *, flush_interval: float | None = 10.0, max_retries: int = 0
) -> Application[Any, Any, Any, Any, Any, Any]:
    """A ready-to-start Application for ``cfg``; ``services.dispatcher`` is created if missing.

    ``flush_interval`` (seconds) runs ``dispatcher.flush()`` on the JobQueue, so
    ``vigil bot`` also delivers alerts queued by another process; None turns it off.
    """
    token = cfg.telegram.token
    if token is None:
        raise ConfigError("telegram.token: not set (set it in the config or VIGIL_TELEGRAM_TOKEN)")

    async def post_init(app: Application[Any, Any, Any, Any, Any, Any]) -> None:
        app.bot_data["services"] = services
        await app.bot.set_my_commands([BotCommand(c.name, c.description) for c in COMMANDS])
        log.info("bot @%s ready: %d commands", app.bot.username, len(COMMANDS))
        if flush_interval and app.job_queue is not None:
            app.job_queue.run_repeating(
                _flush_job, interval=flush_interval, first=min(1.0, flush_interval), name="flush-alerts"
            )

    app = (
        Application.builder()
        .token(token.get_secret_value())
        .base_url(cfg.telegram.base_url)
        .base_file_url(cfg.telegram.base_file_url)
        .context_types(ContextTypes(context=CustomContext))
        .rate_limiter(AIORateLimiter(max_retries=max_retries))
        .post_init(post_init)
        .build()
    )
    if services.dispatcher is None:
        services.dispatcher = make_dispatcher(cfg, services.service.session_factory, bot=app.bot)
    app.bot_data["services"] = services
    not_edited = ~filters.UpdateType.EDITED
    app.add_handler(TypeHandler(Update, _guard), group=-1)
    for cmd in COMMANDS:
        app.add_handler(CommandHandler(cmd.name, _wrap(cmd), filters=not_edited))
    app.add_handler(CallbackQueryHandler(on_button))
    app.add_handler(MessageHandler(filters.COMMAND & not_edited, on_unknown_command))
    app.add_error_handler(_on_error)
    return app


@asynccontextmanager
async def running_application(
    app: Application[Any, Any, Any, Any, Any, Any], *, poll_timeout: float = 10.0
) -> AsyncIterator[Application[Any, Any, Any, Any, Any, Any]]:
    """Initialize, run ``post_init``, start and long-poll; stop cleanly on exit.

    For hosts that own the event loop (the runtime, tests); ``vigil bot`` uses
    ``run_polling`` which does the same plus signal handling.
    """
    await app.initialize()
    if app.post_init is not None:
        await app.post_init(app)
    await app.start()
    assert app.updater is not None
    await app.updater.start_polling(timeout=timedelta(seconds=poll_timeout), drop_pending_updates=False)
    try:
        yield app
    finally:
        if app.updater.running:
            await app.updater.stop()
        await app.stop()
        await app.shutdown()
