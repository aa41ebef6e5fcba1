"""Builds the alert side of the main job: dispatcher, alert targets and the Telegram app.

``vigil run`` and ``vigil demo`` share this so that both send alerts the same
way: with a token, through python-telegram-bot to the configured chats
(the demo also prints them); without one, to the console with PNG charts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from core.config import Config

__all__ = ["FeedValidator", "build_dispatcher"]


class FeedValidator:
    """``await validator(exchange, symbol)`` through the runtime's already-open feeds."""

    def __init__(self, feeds: Mapping[str, Any]) -> None:
        self.feeds = feeds

    async def __call__(self, exchange: str, symbol: str) -> str:
        from core.errors import BadSymbolError

        feed = self.feeds.get(exchange)
        if feed is None:
            known = ", ".join(sorted(self.feeds)) or "none"
            raise BadSymbolError(f"exchange {exchange!r} is not configured (configured: {known})")
        return str(await feed.validate_symbol(symbol))


async def build_dispatcher(
    cfg: Config,
    factory: sessionmaker[Session],
    *,
    feeds: Mapping[str, Any],
    console_too: bool = False,
    with_application: bool = True,
) -> tuple[Any, list[tuple[str, int]], Any]:
    """(dispatcher, alert targets as (channel, chat id), Application or None)."""
    from bot.alerts.dispatcher import alert_targets, make_dispatcher

    channel, chats = alert_targets(cfg)
    targets = [(channel, chat) for chat in chats]
    if channel != "telegram":
        return make_dispatcher(cfg, factory), targets, None
    if console_too:
        targets.append(("console", 0))
    if not with_application:
        from telegram import Bot

        token = cfg.telegram.token.get_secret_value()  # type: ignore[union-attr]
        bot = Bot(token, base_url=cfg.telegram.base_url, base_file_url=cfg.telegram.base_file_url)
        await bot.initialize()
        return make_dispatcher(cfg, factory, bot=bot), targets, None

    from bot.runtime.collaborators import make_backtest_runner
    from bot.service import BotService
    from bot.telegram.application import build_application
    from bot.telegram.context import AccessPolicy, BotServices

    service = BotService(
        cfg, factory, validate_symbol=FeedValidator(feeds), run_backtest_for_chat=make_backtest_runner(cfg, factory)
    )
    services = BotServices(service, AccessPolicy.from_config(cfg.telegram))
    app = build_application(cfg, services)
    return services.dispatcher, targets, app
