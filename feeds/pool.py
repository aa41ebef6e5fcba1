"""One open ExchangeFeed per exchange for the life of the process.

The runtime and the bot ask for ``await pool.get("binance")`` wherever they
need an exchange; the first call opens the client and loads markets, later
calls (even concurrent ones) get the same client, and ``await pool.close()``
at shutdown closes every client once. Exchanges missing from the config get
``ExchangeConfig()`` defaults.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from core.config import ExchangeConfig
from feeds.exchange import ExchangeFeed
from feeds.retry import RetryPolicy

__all__ = ["FeedPool"]


class FeedPool:
    def __init__(self, exchanges: Mapping[str, ExchangeConfig] | None = None, *, retry: RetryPolicy | None = None):
        self._configs = dict(exchanges or {})
        self._retry = retry
        self._feeds: dict[str, ExchangeFeed] = {}
        self._lock = asyncio.Lock()

    async def get(self, name: str) -> ExchangeFeed:
        """The open feed for ``name`` (opened and markets loaded on first use)."""
        async with self._lock:
            feed = self._feeds.get(name)
            if feed is None:
                feed = ExchangeFeed(name, self._configs.get(name, ExchangeConfig()), retry=self._retry)
                await feed.open()
                self._feeds[name] = feed
            return feed

    @property
    def open_exchanges(self) -> list[str]:
        return sorted(self._feeds)

    async def close(self) -> None:
        feeds, self._feeds = list(self._feeds.values()), {}
        await asyncio.gather(*(f.close() for f in feeds), return_exceptions=True)

    async def __aenter__(self) -> FeedPool:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
