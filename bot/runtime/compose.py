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
from bot.runtime.backfill import Backfiller
from bot.runtime.cycle import Runtime
from bot.runtime.detector_pool import DetectorPool
from bot.runtime.seed import seed_watchlist_from_config
from bot.runtime.state import SystemView
from bot.service import BacktestRunner, BotService
from core.config import Config
from core.errors import InputError
from feeds.pool import FeedPool

__all__ = ["System", "build_service", "compose", "make_backtest_runner", "seed_watchlist_from_config"]

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
    from bot.telegram.limits import CHAT_LIMITS

    b = cfg.backtest
    params = {"hold_bars": b.hold_bars, "fees": b.fees, "slippage": b.slippage, "init_cash": b.init_cash}
    default_period = f"{int(CHAT_LIMITS.backtest_default_period.total_seconds() // 60)}m"

    def run_backtest_for_chat(symbol: str, strategy: str | None, period: str | None) -> tuple[str, bytes]:
        """Bounded (``bot.telegram.limits``): the default period when none is named, the newest bars only."""
        from storage.watchlist import list_watch

        with session_factory() as session:  # watched first; a removed market's stored data still backtests
            entries = list_watch(session, symbol=symbol) or list_watch(session, symbol=symbol, enabled_only=False)
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
            period=period or default_period,
            max_bars=CHAT_LIMITS.backtest_max_bars,
        )
        text = summarize(result)
        if len(result.index) >= CHAT_LIMITS.backtest_max_bars:
            cap = CHAT_LIMITS.backtest_max_bars
            text += f"\n(only the newest {cap} bars: the chat's limit; vigil backtest has none)"
        return text, equity_png(result)

    return run_backtest_for_chat


def build_service(
    cfg: Config,
    factory: sessionmaker[Session],
    *,
    feeds: FeedPool | None = None,
    backtests: bool = True,
    backfill: Any = None,
    view: Any = None,
) -> BotService:
    """The service the chat and the CLI share; symbols are checked through ``feeds`` when given.

    ``backfill`` fetches a newly watched market's history at once (``bot.runtime.backfill.Backfiller``);
    ``view`` tells what runs in this process (``bot.runtime.state.SystemView``).
    """
    return BotService(
        cfg,
        factory,
        validate_symbol=feeds.validate_symbol if feeds is not None else None,
        validate_timeframe=feeds.validate_timeframe if feeds is not None else None,
        run_backtest_for_chat=make_backtest_runner(cfg, factory) if backtests else None,
        backfill=backfill,
        view=view,
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
    backfiller: Backfiller
    view: SystemView
    application: Any = None  # telegram.ext.Application when a token is set and the bot runs in-process
    bot: Any = None  # a bare telegram.Bot when alerts go to Telegram without the application
    link: Any = None  # bot.telegram.link.TelegramLink: connects the application in the background
    stream: Any = None  # bot.runtime.stream_job.StreamJob when symbols stream trades (started by the host)

    async def aclose(self) -> None:
        """Close everything :func:`compose` opened, each step even when an earlier one failed.

        The application is stopped and its HTTP clients closed through its link
        (also when it never managed to connect), then the exchange clients, the chart
        workers (charts due are sent first), then the bare Bot.
        """
        try:
            if self.stream is not None:  # the trade streams first: their alerts in flight go out
                await self.stream.stop()
            if self.link is not None:
                await self.link.aclose()
        finally:
            try:
                await self.backfiller.wait()
                await self.feeds.close()
            finally:
                try:
                    await self.dispatcher.aclose()
                finally:
                    if self.bot is not None:
                        await self.bot.shutdown()


async def compose(
    cfg: Config,
    factory: sessionmaker[Session],
    *,
    feeds: FeedPool | None = None,
    model_root: str | Path | None = None,
    detector_options: Mapping[str, Any] | None = None,
    social: Sequence[Any] | None = None,
    console: Console | None = None,
    console_too: bool = False,
    with_application: bool = True,
    stream_clock: Any = None,
) -> System:
    """Build the running system for ``cfg``.

    Parameters
    ----------
    feeds : FeedPool, optional
        Market data; default one ccxt client per configured exchange, opened on first use.
    model_root : path, optional
        Folder of trained model files; default the config's ``paths.models_dir``.
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
    stream_clock : feeds.clock.MarketClock, optional
        The trade-stream job's clock (default the wall clock; the streaming demo replays faster).
    """
    seed_watchlist_from_config(cfg, factory)
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
    root = Path(model_root) if model_root is not None else cfg.paths.models_path
    pool = DetectorPool(cfg, factory, root, **dict(detector_options or {}))
    backfiller = Backfiller(feeds, factory, cfg.scheduler.history_bars)
    view = SystemView(pool)
    service = build_service(cfg, factory, feeds=feeds, backfill=backfiller, view=view)
    channel, chats = alert_targets(cfg)
    targets = [(channel, chat) for chat in chats]
    application: Any = None
    bot: Any = None
    link: Any = None
    if channel != "telegram":
        dispatcher = make_dispatcher(cfg, factory, console=console)
    else:
        if console_too:
            targets.append(("console", 0))
        if with_application:
            from bot.telegram.application import build_application
            from bot.telegram.context import AccessPolicy, BotServices
            from bot.telegram.link import TelegramLink

            services = BotServices(service, AccessPolicy.from_config(cfg.telegram))
            application = build_application(cfg, services)
            # Started by the host (MainJob) in the background: nothing here waits for Telegram.
            link = view.link = TelegramLink(application, retry_max=cfg.telegram.retry_max_seconds)
            dispatcher = make_dispatcher(cfg, factory, bot=application.bot, console=console, link=link)
            services.dispatcher = dispatcher
        else:
            from telegram.error import TelegramError
            from telegram.ext import AIORateLimiter, ExtBot

            token = cfg.telegram.token.get_secret_value()  # type: ignore[union-attr]
            # Telegram's flood limits (30 messages/s, 20 a minute per group), as the application's bot has them:
            # an alert is two messages now (text, then its chart).
            bot = ExtBot(
                token,
                base_url=cfg.telegram.base_url,
                base_file_url=cfg.telegram.base_file_url,
                rate_limiter=AIORateLimiter(max_retries=0),
            )
            try:
                await bot.initialize()
            except TelegramError as err:  # sends retry from the outbox; the loop must not wait for Telegram
                log.warning("Telegram unreachable at start (%s); alerts queue in the outbox meanwhile", err)
            dispatcher = make_dispatcher(cfg, factory, bot=bot, console=console)
    runtime = Runtime(
        cfg, factory, feeds, pool, dispatcher=dispatcher, social=social, alert_targets=targets, onchain=onchain
    )
    stream = None
    if cfg.streamed_symbols:
        from bot.runtime.stream_job import StreamJob, load_chunk_model

        stream = StreamJob(
            cfg,
            factory,
            load_chunk_model(cfg),
            symbols=cfg.streamed_symbols,
            exchange=cfg.streams.exchange,
            ccxt_config=feeds.config(cfg.streams.exchange).ccxt_config,
            clock=stream_clock,
            dispatcher=dispatcher,
            alert_targets=targets,
        )
    return System(
        cfg,
        factory,
        feeds,
        pool,
        service,
        dispatcher,
        targets,
        runtime,
        backfiller,
        view,
        application,
        bot,
        link,
        stream,
    )
