"""A minimal fake of Binance spot REST (``exchangeInfo`` + ``klines``) for the pump dataset builder.

Serves deterministic one-minute candles for the listed symbols (a pump of +30 % at a chosen
minute) so the real ccxt client can run against 127.0.0.1. Written because the feeds helper's
``tests/fakes/binance.py`` had not landed when the builder was written.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from aiohttp import web

__all__ = ["FakeBinancePump", "ccxt_config"]


class FakeBinancePump:
    """aiohttp app; ``pumps`` maps a Binance id (``ADXBTC``) to the pump's open time in ms."""

    def __init__(self, pumps: dict[str, int]) -> None:
        self.pumps = pumps
        self.kline_requests = 0
        self.app = web.Application()
        self.app.router.add_get("/api/v3/exchangeInfo", self.exchange_info)
        self.app.router.add_get("/api/v3/klines", self.klines)

    async def exchange_info(self, request: web.Request) -> web.Response:
        symbols = [
            {
                "symbol": sid,
                "status": "TRADING",
                "baseAsset": sid[:-3],
                "quoteAsset": sid[-3:],
                "baseAssetPrecision": 8,
                "quotePrecision": 8,
                "quoteAssetPrecision": 8,
                "orderTypes": ["LIMIT", "MARKET"],
                "isSpotTradingAllowed": True,
                "isMarginTradingAllowed": False,
                "permissions": ["SPOT"],
                "permissionSets": [["SPOT"]],
                "filters": [],
            }
            for sid in self.pumps
        ]
        return web.json_response({"timezone": "UTC", "serverTime": 0, "rateLimits": [], "symbols": symbols})

    async def klines(self, request: web.Request) -> web.Response:
        self.kline_requests += 1
        sid = request.query["symbol"]
        if sid not in self.pumps:
            return web.json_response({"code": -1121, "msg": "Invalid symbol."}, status=400)
        start = int(request.query.get("startTime", 0))
        end = int(request.query.get("endTime", start + 10**12))
        limit = int(request.query.get("limit", 500))
        first = start - start % 60_000 + (60_000 if start % 60_000 else 0)
        times = np.arange(first, min(end, first + limit * 60_000 - 1) + 1, 60_000)
        rows: list[list[Any]] = []
        for t in times.tolist():
            price = 1e-5 * (1.3 if 0 <= t - self.pumps[sid] < 3 * 60_000 else 1.0)
            volume = 100.0 * (20 if 0 <= t - self.pumps[sid] < 3 * 60_000 else 1)
            rows.append([t, f"{price:.8f}", f"{price * 1.01:.8f}", f"{price * 0.99:.8f}", f"{price:.8f}", f"{volume}",
                         t + 59_999, "0", 10, "0", "0", "0"])  # fmt: skip
        return web.json_response(rows)


def ccxt_config(base_url: str) -> dict[str, Any]:
    """ccxt binance constructor config pointing the public spot API at the fake."""
    return {
        "urls": {"api": {"public": f"{base_url}/api/v3"}},
        "options": {"fetchMarkets": {"types": ["spot"]}, "fetchCurrencies": False},
    }
