"""A symbol validator over a fixed list of markets: the bot tests' stand-in for the exchange.

Same contract as the production validator (``feeds.pool.FeedPool.validate_symbol``):
the normalized symbol, or ``BadSymbolError`` naming symbol and exchange with close
matches in ``.suggestions``.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping

from core.errors import BadSymbolError

__all__ = ["MarketsValidator"]


class MarketsValidator:
    """A symbol validator over a fixed list of markets per exchange.

    The production validator asks the exchange (``ExchangeFeed.validate_symbol``);
    this one answers from a known list, with the same contract: the normalized
    symbol, or :class:`BadSymbolError` naming symbol and exchange with close
    matches in ``.suggestions``.
    """

    def __init__(self, markets: Mapping[str, Iterable[str]]) -> None:
        self.markets = {ex: sorted(set(symbols)) for ex, symbols in markets.items()}

    async def __call__(self, exchange: str, symbol: str) -> str:
        known = self.markets.get(exchange)
        if known is None:
            raise BadSymbolError(f"exchange {exchange!r} is not configured")
        if symbol in known:
            return symbol
        err = BadSymbolError(f"{symbol} is not listed on {exchange}")
        base = symbol.split("/")[0]
        close = difflib.get_close_matches(symbol, known, n=3, cutoff=0.5)
        same_base = [s for s in known if s.split("/")[0] == base and s not in close]
        err.suggestions = (close + same_base)[:3]  # type: ignore[attr-defined]
        raise err
