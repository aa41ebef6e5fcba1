"""A local fake of Binance's spot REST API, for driving the real ccxt client.

It answers the endpoints ccxt's ``binance`` class calls for public market
data (``exchangeInfo``, ``klines``, ``aggTrades``, ``trades``, ``depth``, ``time``) with
the same JSON shapes and the same paging semantics as the real service:
``klines`` returns at most ``limit`` bars with ``startTime <= open <= endTime``,
skipping holes, so a client that paginates wrongly fails here as it would
there. Other areas' tests reuse it to serve candles they build themselves::

    async with FakeBinance({"BTC/USDT": frame}) as fake:
        feed = ExchangeFeed("binance", ExchangeConfig(ccxt_config=fake.ccxt_config()))

Error injection: ``fail_next(status, body=..., count=n, path=...)`` answers the
next ``n`` matching requests with that status; ``fail_after(n_requests)`` makes
every kline request after the first ``n`` fail with 503 (an interrupted
backfill); ``delay_next(seconds)`` stalls to provoke client timeouts;
``malformed_next()`` sends a body that is not JSON. ``requests`` counts
requests per path.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from aiohttp import web

from feeds.loopback import serve_in_thread
from tests.fakes.binance_data import INTERVAL_MS, make_candles, market_id, symbol_info

__all__ = ["FakeBinance", "Injected", "make_candles"]


@dataclass
class Injected:
    """One injected failure: the answer for the next ``count`` matching requests."""

    status: int
    body: str
    count: int
    path: str | None = None  # None = any path except exchangeInfo
    delay: float = 0.0
    content_type: str = "application/json"


def _bad_symbol() -> web.Response:
    return web.json_response({"code": -1121, "msg": "Invalid symbol."}, status=400)


class FakeBinance:
    """An aiohttp server on 127.0.0.1 (free port) that speaks Binance spot REST.

    Parameters
    ----------
    candles
        ``{"BTC/USDT": frame}``; frames are indexed by UTC open time with
        ``open, high, low, close, volume``. Every symbol is served at the
        timeframe given by ``timeframe`` (requests for other intervals get
        the frame resampled by pandas).
    trades
        ``{"BTC/USDT": frame}`` with ``timestamp`` (ms), ``price``, ``amount``,
        ``side`` ("buy"/"sell"); served as ``aggTrades`` and ``trades``.
    extra_symbols
        Symbols listed in ``exchangeInfo`` without data (for validation tests).
    """

    def __init__(
        self,
        candles: dict[str, pd.DataFrame] | None = None,
        trades: dict[str, pd.DataFrame] | None = None,
        *,
        timeframe: str = "1h",
        extra_symbols: list[str] | tuple[str, ...] = (),
    ) -> None:
        self.timeframe = timeframe
        self.candles: dict[str, pd.DataFrame] = {}
        for symbol, frame in (candles or {}).items():
            self.set_candles(symbol, frame)
        self.trades: dict[str, pd.DataFrame] = dict(trades or {})
        #: ``{"BTC/USDT": {"bids": [[price, qty], ...], "asks": [...]}}``; default: a book around the last close
        self.books: dict[str, dict[str, list[list[float]]]] = {}
        self.extra_symbols = list(extra_symbols)
        self.requests: Counter[str] = Counter()
        self.kline_requests: list[dict[str, str]] = []
        self._injected: list[Injected] = []
        self._fail_after: int | None = None
        self.latency = 0.0  # seconds every request waits before its answer (lets requests overlap)
        self.in_flight = 0
        self.max_in_flight = 0  # the most requests seen being served at once
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    # ----------------------------------------------------------------- data
    def set_candles(self, symbol: str, frame: pd.DataFrame) -> None:
        """Serve ``frame`` for ``symbol`` (replaces any previous frame)."""
        idx = pd.DatetimeIndex(frame.index).as_unit("ms")
        self.candles[symbol] = frame.set_axis(idx).sort_index()

    @property
    def symbols(self) -> list[str]:
        return sorted({*self.candles, *self.trades, *self.extra_symbols})

    # ------------------------------------------------------------ injection
    def fail_next(
        self, status: int, body: str | dict | None = None, *, count: int = 1, path: str | None = None
    ) -> None:
        """Answer the next ``count`` requests (to ``path`` if given) with ``status``."""
        text = json.dumps(body) if isinstance(body, dict) else (body or "")
        self._injected.append(Injected(status, text, count, path))

    def delay_next(self, seconds: float, *, count: int = 1, path: str | None = None) -> None:
        """Stall the next ``count`` requests by ``seconds`` (to provoke client timeouts)."""
        self._injected.append(Injected(0, "", count, path, delay=seconds))

    def malformed_next(self, *, count: int = 1, path: str | None = "/api/v3/klines") -> None:
        """Answer 200 with a truncated JSON body."""
        self._injected.append(Injected(200, '[[1700000000000,"1.0","2.0"', count, path))

    def fail_after(self, n_kline_requests: int | None) -> None:
        """Make every klines request after the first ``n`` answer 503 (None: stop failing)."""
        self._fail_after = n_kline_requests

    def clear_failures(self) -> None:
        self._injected.clear()
        self._fail_after = None

    # --------------------------------------------------------------- server
    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("FakeBinance is not started")
        return f"http://127.0.0.1:{self.port}"

    def ccxt_config(self, **extra: Any) -> dict[str, Any]:
        """Constructor config for ``ccxt.async_support.binance`` pointing here.

        Only spot markets are loaded (``fetchMarkets.types``), currencies are
        not fetched (that is a signed ``sapi`` call), the rate limiter stays
        on but with a tiny interval, and the timeout is short.
        """
        api = {
            key: self.url + path
            for key, path in {
                "public": "/api/v3",
                "private": "/api/v3",
                "v1": "/api/v1",
                "sapi": "/sapi/v1",
                "sapiV2": "/sapi/v2",
                "sapiV3": "/sapi/v3",
                "sapiV4": "/sapi/v4",
                "fapiPublic": "/fapi/v1",
                "fapiPublicV2": "/fapi/v2",
                "fapiPublicV3": "/fapi/v3",
                "fapiPrivate": "/fapi/v1",
                "fapiPrivateV2": "/fapi/v2",
                "fapiPrivateV3": "/fapi/v3",
                "fapiData": "/futures/data",
                "dapiPublic": "/dapi/v1",
                "dapiPrivate": "/dapi/v1",
                "dapiPrivateV2": "/dapi/v2",
                "dapiData": "/futures/data",
                "eapiPublic": "/eapi/v1",
                "eapiPrivate": "/eapi/v1",
                "papi": "/papi/v1",
                "papiV2": "/papi/v2",
            }.items()
        }
        config: dict[str, Any] = {
            "urls": {"api": api},
            "options": {
                "fetchMarkets": {"types": ["spot"]},
                "fetchCurrencies": False,
                "fetchMargins": False,
            },
            "enableRateLimit": True,
            "rateLimit": 1,
            "timeout": 2_000,
        }
        config.update(extra)
        return config

    async def start(self) -> FakeBinance:
        app = web.Application(middlewares=[self._middleware])
        app.router.add_get("/api/v3/exchangeInfo", self._exchange_info)
        app.router.add_get("/api/v3/klines", self._klines)
        app.router.add_get("/api/v3/aggTrades", self._agg_trades)
        app.router.add_get("/api/v3/trades", self._trades)
        app.router.add_get("/api/v3/depth", self._depth)
        app.router.add_get("/api/v3/time", self._time)
        app.router.add_get("/api/v3/ping", self._ping)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        sockets = site._server.sockets  # type: ignore[union-attr]
        self.port = int(sockets[0].getsockname()[1])
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeBinance:
        return await self.start()

    @contextlib.contextmanager
    def running_in_thread(self) -> Iterator[FakeBinance]:
        """Serve from a background thread's event loop (for code that calls ``asyncio.run``, e.g. the CLI)."""
        with serve_in_thread(self, "fake-binance"):
            yield self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ------------------------------------------------------------- handlers
    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.latency:
                await asyncio.sleep(self.latency)
            return await self._answer(request, handler)
        finally:
            self.in_flight -= 1

    async def _answer(self, request: web.Request, handler: Any) -> web.StreamResponse:
        path = request.path
        self.requests[path] += 1
        for inj in list(self._injected):
            if inj.path is None and path == "/api/v3/exchangeInfo":
                continue
            if inj.path is not None and inj.path != path:
                continue
            inj.count -= 1
            if inj.count <= 0:
                self._injected.remove(inj)
            if inj.delay:
                await asyncio.sleep(inj.delay)
                break
            return web.Response(status=inj.status, text=inj.body, content_type=inj.content_type)
        if path == "/api/v3/klines" and self._fail_after is not None:
            if self.requests[path] > self._fail_after:
                return web.Response(status=503, text="Service Unavailable", content_type="text/html")
        return await handler(request)

    async def _ping(self, request: web.Request) -> web.Response:
        return web.json_response({})

    async def _time(self, request: web.Request) -> web.Response:
        return web.json_response({"serverTime": int(pd.Timestamp.now("UTC").value // 1_000_000)})

    async def _exchange_info(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "timezone": "UTC",
                "serverTime": int(pd.Timestamp.now("UTC").value // 1_000_000),
                "rateLimits": [
                    {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000}
                ],
                "exchangeFilters": [],
                "symbols": [symbol_info(s) for s in self.symbols],
            }
        )

    def _symbol_for(self, wanted: str | None) -> str | None:
        for symbol in self.symbols:
            if market_id(symbol) == wanted:
                return symbol
        return None

    def _frame_for(self, symbol: str, interval: str) -> pd.DataFrame:
        frame = self.candles.get(symbol)
        if frame is None or frame.empty:
            return pd.DataFrame(columns=["open", "high", "low", "close", "volume"])
        if interval == self.timeframe:
            return frame
        rule = f"{INTERVAL_MS[interval]}ms"
        agg = {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}
        return frame.resample(rule, label="left", closed="left").agg(agg).dropna()

    async def _klines(self, request: web.Request) -> web.Response:
        q = request.query
        self.kline_requests.append(dict(q))
        symbol = self._symbol_for(q.get("symbol"))
        if symbol is None:
            return _bad_symbol()
        interval = q.get("interval", "")
        if interval not in INTERVAL_MS:
            return web.json_response({"code": -1120, "msg": "Invalid interval."}, status=400)
        limit = min(int(q.get("limit", 500)), 1000)
        frame = self._frame_for(symbol, interval)
        ts = frame.index.asi8 if len(frame) else np.array([], dtype="int64")
        mask = np.ones(len(ts), dtype=bool)
        if "startTime" in q:
            mask &= ts >= int(q["startTime"])
        if "endTime" in q:
            mask &= ts <= int(q["endTime"])
        if "startTime" in q:
            rows = frame[mask].iloc[:limit]
        else:
            rows = frame[mask].iloc[-limit:]
        step = INTERVAL_MS[interval]
        out = [
            [
                int(t),
                f"{o:.8f}",
                f"{h:.8f}",
                f"{lo:.8f}",
                f"{c:.8f}",
                f"{v:.8f}",
                int(t) + step - 1,
                f"{v * c:.8f}",
                10,
                f"{v / 2:.8f}",
                f"{v * c / 2:.8f}",
                "0",
            ]
            for t, o, h, lo, c, v in zip(
                rows.index.asi8.tolist(),
                rows["open"].tolist(),
                rows["high"].tolist(),
                rows["low"].tolist(),
                rows["close"].tolist(),
                rows["volume"].tolist(),
                strict=True,
            )
        ]
        return web.json_response(out)

    async def _depth(self, request: web.Request) -> web.Response:
        """``GET /api/v3/depth``: the book of ``books`` (or 50 even levels around the last close), ``limit`` a side."""
        q = request.query
        symbol = self._symbol_for(q.get("symbol"))
        if symbol is None:
            return _bad_symbol()
        limit = int(q.get("limit", 100))
        if limit not in (5, 10, 20, 50, 100, 500, 1000, 5000):
            return web.json_response(
                {"code": -1100, "msg": "Illegal characters found in parameter 'limit'."}, status=400
            )
        book = self.books.get(symbol)
        if book is None:
            frame = self.candles.get(symbol)
            mid = float(frame["close"].iloc[-1]) if frame is not None and len(frame) else 100.0
            book = {
                "bids": [[mid * (1 - 0.0005 * (i + 1)), 1.0] for i in range(50)],
                "asks": [[mid * (1 + 0.0005 * (i + 1)), 1.0] for i in range(50)],
            }
        self.requests[f"depth:{symbol}"] += 1
        side = {k: [[f"{p:.8f}", f"{a:.8f}"] for p, a in book[k][:limit]] for k in ("bids", "asks")}
        return web.json_response({"lastUpdateId": 1027024, **side})

    def _trade_rows(self, request: web.Request) -> pd.DataFrame | web.Response:
        q = request.query
        symbol = self._symbol_for(q.get("symbol"))
        if symbol is None:
            return _bad_symbol()
        frame = self.trades.get(symbol)
        if frame is None:
            frame = pd.DataFrame({"timestamp": [], "price": [], "amount": [], "side": []})
        frame = frame.sort_values("timestamp", kind="stable").reset_index(drop=True)
        limit = min(int(q.get("limit", 500)), 1000)
        mask = np.ones(len(frame), dtype=bool)
        if "startTime" in q:
            mask &= frame["timestamp"].to_numpy() >= int(q["startTime"])
        if "endTime" in q:
            mask &= frame["timestamp"].to_numpy() <= int(q["endTime"])
        rows = frame[mask]
        return rows.iloc[:limit] if "startTime" in q else rows.iloc[-limit:]

    async def _agg_trades(self, request: web.Request) -> web.Response:
        rows = self._trade_rows(request)
        if isinstance(rows, web.Response):
            return rows
        out = [
            {
                "a": int(i),
                "p": f"{p:.8f}",
                "q": f"{a:.8f}",
                "f": int(i),
                "l": int(i),
                "T": int(t),
                "m": s == "sell",
                "M": True,
            }
            for i, t, p, a, s in zip(
                rows.index.tolist(),
                rows["timestamp"].tolist(),
                rows["price"].tolist(),
                rows["amount"].tolist(),
                rows["side"].tolist(),
                strict=True,
            )
        ]
        return web.json_response(out)

    async def _trades(self, request: web.Request) -> web.Response:
        rows = self._trade_rows(request)
        if isinstance(rows, web.Response):
            return rows
        out = [
            {
                "id": int(i),
                "price": f"{p:.8f}",
                "qty": f"{a:.8f}",
                "quoteQty": f"{p * a:.8f}",
                "time": int(t),
                "isBuyerMaker": s == "sell",
                "isBestMatch": True,
            }
            for i, t, p, a, s in zip(
                rows.index.tolist(),
                rows["timestamp"].tolist(),
                rows["price"].tolist(),
                rows["amount"].tolist(),
                rows["side"].tolist(),
                strict=True,
            )
        ]
        return web.json_response(out)
