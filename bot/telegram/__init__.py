"""The Telegram user interface (python-telegram-bot v22): application, handlers, buttons, context.

A thin layer over :class:`bot.service.BotService`; nothing here touches the database directly.
"""

from __future__ import annotations

__all__: list[str] = []
