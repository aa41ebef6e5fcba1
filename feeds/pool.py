"""The one cache of open feeds: one client per exchange for the life of the process.

The runtime, the symbol validator of the bot and the CLI all ask
``await pool.get("binance")``; the first call opens the client and loads
markets, later calls (even concurrent ones) get the same client, and
``await pool.close()`` at shutdown closes every client once. Exchanges missing
from the config get ``ExchangeConfig()`` defaults. Feeds that are not ccxt
clients (the demo's replay) are handed in ready-made with ``feeds=``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import TYPE_CHECKING

from core.config import ExchangeConfig
from feeds.base import CandleFeed
from feeds.retry import RetryPolicy

if TYPE_CHECKING:
    from feeds.kline_stream import KlineStream

__all__ = ["FeedPool"]


class FeedPool:
    """Open-on-first-use feeds by exchange name."""

    def __init__(
        self,
        exchanges: Mapping[str, ExchangeConfig] | None = None,
        *,
        retry: RetryPolicy | None = None,
        feeds: Mapping[str, CandleFeed] | None = None,
    ) -> None:
        self._configs = dict(exchanges or {})
        self._retry = retry
        self._feeds: dict[str, CandleFeed] = dict(feeds or {})
        self._streams: dict[str, KlineStream] = {}
        self._lock = asyncio.Lock()

    def config(self, name: str) -> ExchangeConfig:
        """The settings of exchange ``name`` (defaults when the config does not list it)."""
        return self._configs.get(name, ExchangeConfig())

    async def get(self, name: str) -> CandleFeed:
        """The open feed for ``name`` (opened and markets loaded on first use)."""
        async with self._lock:
            feed = self._feeds.get(name)
            if feed is None:
                from feeds.exchange import ExchangeFeed  # ccxt is heavy: only when a real exchange is used

                opened = ExchangeFeed(name, self.config(name), retry=self._retry)
                await opened.open()
                self._feeds[name] = feed = opened
            return feed

    async def stream(self, name: str) -> KlineStream | None:
        """The kline WebSocket stream of ``name`` when its config asks for one (``candles = "websocket"``)."""
        if self.config(name).candles != "websocket":
            return None
        async with self._lock:
            stream = self._streams.get(name)
            if stream is None:
                from feeds.kline_stream import KlineStream  # ccxt.pro: only when a stream is configured

                stream = await KlineStream(name, self.config(name)).open()
                self._streams[name] = stream
            return stream

    async def validate_symbol(self, exchange: str, symbol: str) -> str:
        """``symbol`` as ``exchange`` lists it; ``BadSymbolError`` with suggestions otherwise."""
        feed = await self.get(exchange)
        return str(await feed.validate_symbol(symbol))

    async def validate_timeframe(self, exchange: str, timeframe: str) -> str:
        """``timeframe`` when ``exchange`` serves candles at it; ``InputError`` naming those it serves otherwise."""
        feed = await self.get(exchange)
        check = getattr(feed, "validate_timeframe", None)
        return str(check(timeframe)) if check is not None else timeframe

    @property
    def open_exchanges(self) -> list[str]:
        return sorted(self._feeds)

    async def close(self) -> None:
        feeds, self._feeds = list(self._feeds.values()), {}
        streams, self._streams = list(self._streams.values()), {}
        await asyncio.gather(*(f.close() for f in [*streams, *feeds]), return_exceptions=True)

    async def __aenter__(self) -> FeedPool:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
