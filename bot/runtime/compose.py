"""The composition root: the one place that builds feeds, detector pool, dispatcher, service and app.

``vigil run`` (``bot.runtime.scheduler``), ``vigil demo``, ``vigil bot``, the
CLI's watchlist commands and the benchmarks all assemble the system here, so
they send alerts the same way: with a Telegram token, through
python-telegram-bot to the configured chats (the demo also prints them);
without one, to the console with PNG charts. Nothing below ``bot`` reaches up
for configuration: everything is built here and handed down.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from sqlalchemy.orm import Session, sessionmaker

from bot.alerts.dispatcher import Dispatcher, alert_targets, make_dispatcher
from bot.runtime.cycle import Runtime
from bot.runtime.detector_pool import DetectorPool
from bot.service import BacktestRunner, BotService
from core.config import Config
from core.errors import InputError
from feeds.pool import FeedPool

__all__ = ["System", "build_service", "compose", "make_backtest_runner"]

log = logging.getLogger(__name__)


def make_backtest_runner(cfg: Config, session_factory: sessionmaker[Session]) -> BacktestRunner | None:
    """``run_backtest_for_chat(symbol, strategy, period) -> (text, png)``, or None without the backtest package.

    Kept out of :class:`~bot.service.BotService` so the service (and the bot's
    tests) never import vectorbt.
    """
    try:
        from backtest.service import backtest_symbol, equity_png, summarize
    except ImportError:
        log.info("backtest package not available: /backtest is disabled")
        return None
    b = cfg.backtest
    params = {"hold_bars": b.hold_bars, "fees": b.fees, "slippage": b.slippage, "init_cash": b.init_cash}

    def run_backtest_for_chat(symbol: str, strategy: str | None, period: str | None) -> tuple[str, bytes]:
        from storage.watchlist import list_watch

        with session_factory() as session:
            entries = list_watch(session, symbol=symbol)
        if not entries:
            raise InputError(f"{symbol} is not on the watchlist")
        entry = entries[0]
        result = backtest_symbol(
            session_factory,
            exchange=entry.exchange,
            symbol=entry.symbol,
            timeframe=entry.timeframe,
            strategy=strategy or cfg.backtest.strategy,
            params=params,
            period=period,
        )
        return summarize(result), equity_png(result)

    return run_backtest_for_chat


def build_service(
    cfg: Config, factory: sessionmaker[Session], *, feeds: FeedPool | None = None, backtests: bool = True
) -> BotService:
    """The service the chat and the CLI share; symbols are checked through ``feeds`` when given."""
    return BotService(
        cfg,
        factory,
        validate_symbol=feeds.validate_symbol if feeds is not None else None,
        run_backtest_for_chat=make_backtest_runner(cfg, factory) if backtests else None,
    )


@dataclass
class System:
    """Everything the main job runs with; :meth:`aclose` releases what :func:`compose` opened."""

    cfg: Config
    factory: sessionmaker[Session]
    feeds: FeedPool
    detectors: DetectorPool
    service: BotService
    dispatcher: Dispatcher
    targets: list[tuple[str, int]]
    runtime: Runtime
    application: Any = None  # telegram.ext.Application when a token is set and the bot runs in-process
    bot: Any = None  # a bare telegram.Bot when alerts go to Telegram without the application

    async def aclose(self) -> None:
        """Close the exchange clients and the bare Bot (the application's lifecycle belongs to its host)."""
        await self.feeds.close()
        if self.bot is not None:
            await self.bot.shutdown()


async def compose(
    cfg: Config,
    factory: sessionmaker[Session],
    *,
    feeds: FeedPool | None = None,
    model_root: str | Path = "models",
    detector_options: Mapping[str, Any] | None = None,
    social: Sequence[Any] | None = None,
    console: Console | None = None,
    console_too: bool = False,
    with_application: bool = True,
) -> System:
    """Build the running system for ``cfg``.

    Parameters
    ----------
    feeds : FeedPool, optional
        Market data; default one ccxt client per configured exchange, opened on first use.
    model_root : path
        Folder of trained model files.
    detector_options : mapping, optional
        Keyword arguments of :class:`DetectorPool` (training sizes for the demo and benchmarks).
    social : sequence, optional
        Social volume sources; default those enabled in the config.
    console : rich Console, optional
        Where console alerts are printed.
    console_too : bool
        With a Telegram token, print alerts on the console as well (the demo).
    with_application : bool
        Build the Telegram ``Application`` (chat commands) or, when False, only a bare ``Bot`` to send alerts.
    """
    feeds = feeds if feeds is not None else FeedPool(cfg.exchanges)
    if social is None:
        social = []
        if cfg.social:
            from feeds.social import build_social_sources

            social = build_social_sources([s for s in cfg.social if s.enabled])
    onchain: list[Any] = []
    if cfg.onchain:
        from feeds.onchain import build_onchain_sources

        onchain = build_onchain_sources(cfg.onchain)
    pool = DetectorPool(cfg, factory, model_root, **dict(detector_options or {}))
    service = build_service(cfg, factory, feeds=feeds)
    channel, chats = alert_targets(cfg)
    targets = [(channel, chat) for chat in chats]
    application: Any = None
    bot: Any = None
    if channel != "telegram":
        dispatcher = make_dispatcher(cfg, factory, console=console)
    else:
        if console_too:
            targets.append(("console", 0))
        if with_application:
            from bot.telegram.application import build_application
            from bot.telegram.context import AccessPolicy, BotServices

            services = BotServices(service, AccessPolicy.from_config(cfg.telegram))
            application = build_application(cfg, services)
            assert services.dispatcher is not None  # build_application creates it
            dispatcher = services.dispatcher
        else:
            from telegram import Bot

            token = cfg.telegram.token.get_secret_value()  # type: ignore[union-attr]
            bot = Bot(token, base_url=cfg.telegram.base_url, base_file_url=cfg.telegram.base_file_url)
            await bot.initialize()
            dispatcher = make_dispatcher(cfg, factory, bot=bot, console=console)
    runtime = Runtime(
        cfg, factory, feeds, pool, dispatcher=dispatcher, social=social, alert_targets=targets, onchain=onchain
    )
    return System(cfg, factory, feeds, pool, service, dispatcher, targets, runtime, application, bot)
