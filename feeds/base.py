"""What the main loop needs from a market data feed, whatever is behind it.

:class:`~feeds.exchange.ExchangeFeed` (any ccxt exchange) and
:class:`~feeds.replay.ReplayFeed` (a synthetic market or CSV files replayed in
accelerated time) both satisfy :class:`CandleFeed`; the runtime, the backfill
and the demo only ever see this protocol.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol, runtime_checkable

import pandas as pd

__all__ = ["CandleFeed", "TradeFeed"]


@runtime_checkable
class CandleFeed(Protocol):
    """Closed OHLCV bars of one market data source, plus symbol checks and a lifecycle."""

    name: str

    async def open(self) -> object: ...

    async def close(self) -> None: ...

    async def validate_symbol(self, symbol: str) -> str:
        """The symbol as the source spells it; ``BadSymbolError`` (with suggestions) when it is not listed."""
        ...

    async def fetch_closed_candles(
        self,
        symbol: str,
        timeframe: str,
        since_ms: int | None,
        *,
        until_ms: int | None = None,
        now_ms: int | None = None,
    ) -> pd.DataFrame:
        """Bars that closed by ``now_ms``, opening at or after ``since_ms`` (frame indexed by open time, UTC)."""
        ...

    def iter_closed_candles(
        self,
        symbol: str,
        timeframe: str,
        since_ms: int,
        *,
        until_ms: int | None = None,
        now_ms: int | None = None,
    ) -> AsyncIterator[pd.DataFrame]:
        """The same bars page by page (for long backfills with progress)."""
        ...


@runtime_checkable
class TradeFeed(Protocol):
    """Public trades of one source (the pump detector's chunk features are built from them)."""

    name: str

    async def fetch_trades(self, symbol: str, since_ms: int | None = None, limit: int | None = None) -> pd.DataFrame:
        """Trades as a frame (``timestamp, price, amount, side``, ...), oldest first."""
        ...
