"""Market data: exchange candles and trades (ccxt), social volume sources, the synthetic market.

The public face (loaded on first use, so importing ``feeds`` never pulls in ccxt)::

    from feeds import CandleFeed, FeedPool, ExchangeFeed, ReplayFeed, sync_candles, generate_market
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["CandleFeed", "ExchangeFeed", "FeedPool", "ReplayFeed", "TradeFeed", "generate_market", "sync_candles"]

_WHERE = {
    "CandleFeed": "feeds.base",
    "TradeFeed": "feeds.base",
    "ExchangeFeed": "feeds.exchange",
    "FeedPool": "feeds.pool",
    "ReplayFeed": "feeds.replay",
    "sync_candles": "feeds.backfill",
    "generate_market": "feeds.synthetic",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'feeds' has no attribute {name!r}")
