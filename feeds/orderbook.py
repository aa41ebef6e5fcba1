"""Order-book snapshots reduced to a few numbers per bar.

A full book is thousands of levels that change every millisecond; what a detector can
use at bar grain is its shape at the bar close:

* ``book_spread_bps``: top-of-book spread, ``(ask - bid) / mid`` in basis points;
* ``book_imbalance_1pct`` / ``book_imbalance_5pct``: ``(bid depth - ask depth) / (bid depth +
  ask depth)`` counting quote notional of the levels within 1 % / 5 % of the mid; +1 is all
  bids (support, or someone spoofing it), -1 all asks;
* ``book_depth_1pct``: the quote notional within 1 % on both sides (how thin the market is).

Only these numbers are stored (``storage.book``), never the book; the request is bounded by
the entry's ``book_depth`` (levels per side, 5..1000), and stored rows older than the
retention are deleted. A venue whose book is not deep enough to reach a band still gets
the band's imbalance over the levels it has.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from core.errors import DataSourceError

__all__ = ["BOOK_COLUMNS", "OrderBookFeed", "book_features", "fetch_book_features"]

log = logging.getLogger(__name__)

BOOK_COLUMNS: tuple[str, ...] = ("book_spread_bps", "book_imbalance_1pct", "book_imbalance_5pct", "book_depth_1pct")


@runtime_checkable
class OrderBookFeed(Protocol):
    """A feed that can snapshot an order book (``ExchangeFeed`` through ccxt ``fetch_order_book``)."""

    name: str

    async def fetch_order_book(self, symbol: str, limit: int | None = None) -> dict[str, Any]: ...


def _levels(side: Any, what: str) -> np.ndarray:
    """(n, 2) price, amount of one side; rows with a non-positive price or amount dropped."""
    try:
        arr = np.array([(float(level[0]), float(level[1])) for level in side or []], dtype="float64").reshape(-1, 2)
    except (TypeError, ValueError, IndexError):
        raise DataSourceError(f"order book: unreadable {what} levels") from None
    return arr[(arr[:, 0] > 0) & (arr[:, 1] > 0)]


def book_features(book: dict[str, Any], bands: Sequence[float] = (0.01, 0.05)) -> dict[str, float]:
    """The per-bar numbers of one snapshot (ccxt's ``{"bids": [[price, amount], ...], "asks": ...}``).

    NaN where a side is empty (a halted or one-sided book says nothing about the spread).
    """
    bids, asks = _levels(book.get("bids"), "bid"), _levels(book.get("asks"), "ask")
    nan = float("nan")
    if len(bids) == 0 or len(asks) == 0:
        return dict.fromkeys(BOOK_COLUMNS, nan)
    best_bid, best_ask = float(bids[:, 0].max()), float(asks[:, 0].min())
    mid = (best_bid + best_ask) / 2.0
    out = {"book_spread_bps": (best_ask - best_bid) / mid * 1e4}
    for band, name in zip(bands, ("book_imbalance_1pct", "book_imbalance_5pct"), strict=False):
        bid_depth = float((bids[:, 0] * bids[:, 1])[bids[:, 0] >= mid * (1 - band)].sum())
        ask_depth = float((asks[:, 0] * asks[:, 1])[asks[:, 0] <= mid * (1 + band)].sum())
        total = bid_depth + ask_depth
        out[name] = (bid_depth - ask_depth) / total if total > 0 else nan
        if name == "book_imbalance_1pct":
            out["book_depth_1pct"] = total
    return out


async def fetch_book_features(feed: Any, symbol: str, limit: int) -> dict[str, float]:
    """Snapshot ``symbol``'s book (``limit`` levels per side) and reduce it; DataSourceError on failure."""
    if not isinstance(feed, OrderBookFeed):
        raise DataSourceError(f"{getattr(feed, 'name', feed)!r}: this feed offers no order books")
    book = await feed.fetch_order_book(symbol, limit=limit)
    if not isinstance(book, dict):
        raise DataSourceError(f"{feed.name} fetch_order_book {symbol}: unexpected answer")
    return book_features(book)
