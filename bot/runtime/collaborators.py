"""The production collaborators injected into :class:`~bot.service.BotService`.

Kept apart from the service so the service (and the bot's tests) never
import ccxt or vectorbt: the symbol validator wraps
``feeds.exchange.ExchangeFeed.validate_symbol`` (one feed per exchange, markets
loaded once, opened on first use) and the backtest runner wraps
``backtest.service.backtest_symbol``. Both import their package lazily.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from core.config import Config, ExchangeConfig
from core.errors import DataSourceError, InputError

__all__ = ["ExchangeValidator", "make_backtest_runner"]

log = logging.getLogger(__name__)


class ExchangeValidator:
    """``await validator(exchange, symbol) -> normalized symbol`` against the exchange's markets."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self._feeds: dict[str, Any] = {}
        self._lock = asyncio.Lock()

    async def _feed(self, exchange: str) -> Any:
        async with self._lock:
            feed = self._feeds.get(exchange)
            if feed is None:
                try:
                    from feeds.exchange import ExchangeFeed
                except ImportError as err:
                    raise DataSourceError(f"cannot check symbols on {exchange}: {err}") from None
                feed = ExchangeFeed(exchange, self.cfg.exchanges.get(exchange, ExchangeConfig()))
                await feed.open()
                self._feeds[exchange] = feed
            return feed

    async def __call__(self, exchange: str, symbol: str) -> str:
        feed = await self._feed(exchange)
        return str(await feed.validate_symbol(symbol))

    async def close(self) -> None:
        feeds, self._feeds = list(self._feeds.values()), {}
        for feed in feeds:
            await feed.close()


def _config_params(cfg: Config) -> dict[str, Any]:
    """The ``[backtest]`` settings that a chat backtest runs with."""
    b = cfg.backtest
    return {"hold_bars": b.hold_bars, "fees": b.fees, "slippage": b.slippage, "init_cash": b.init_cash}


def make_backtest_runner(cfg: Config, session_factory: sessionmaker[Session]) -> Any:
    """``run_backtest_for_chat(symbol, strategy, period) -> (text, png)``, or None without the backtest package."""
    try:
        from backtest.service import backtest_symbol, equity_png, summarize
    except ImportError:
        log.info("backtest package not available: /backtest is disabled")
        return None

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
            params=_config_params(cfg),
            period=period,
        )
        return summarize(result), equity_png(result)

    return run_backtest_for_chat
