"""A loopback exchange on 127.0.0.1 that replays a trade tape over Binance's public protocol.

``vigil demo --streams``, the streaming benchmarks and the tests point the real ccxt client
(``ccxt.pro.binance``, REST and WebSocket) at it through the constructor config
(:meth:`LoopbackExchange.ccxt_config`), so everything from the socket up is the production
code path. It speaks:

* REST: ``/api/v3/exchangeInfo`` (spot symbols of the tape), ``/api/v3/aggTrades``
  (``startTime``/``endTime`` or ``fromId``, ``limit`` <= 1000; consecutive fills of one taker
  order at one price are one aggregate with ``f``..``l`` trade ids, as Binance aggregates them),
  ``/api/v3/trades``, ``/api/v3/time``, ``/api/v3/ping``;
* WebSocket ``/stream/ws/<n>`` (what ccxt builds from ``urls.api.ws.spot``): ``SUBSCRIBE`` /
  ``UNSUBSCRIBE`` / ``LIST_SUBSCRIPTIONS`` requests answered with ``{"result": ..., "id": ...}``;
  ``<symbol>@trade`` streams pushing one raw trade payload per message
  (``{"e": "trade", "E", "s", "t", "p", "q", "T", "m", "M"}``); a server ping frame every
  ``ping_interval`` seconds, a connection that leaves pings unanswered for ``pong_timeout``
  seconds is closed, client pings are answered with pongs.

Only trades whose time has come on the :class:`ReplayClock` are served: the replay cannot leak
the future through REST either. Faults for soak tests and the demo (:class:`StreamFaults`):
server-side disconnects every ``disconnect_every_s`` seconds of market time, and a seeded share
of trade messages dropped, duplicated or swapped with the next one. Stream kinds are looked up
in :attr:`LoopbackExchange.stream_kinds`, so another kind (klines) can be added beside ``trade``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from aiohttp import WSMsgType, web

from feeds.clock import ReplayClock

__all__ = ["LoopbackExchange", "ReplayClock", "StreamFaults", "market_id", "serve_in_thread"]

log = logging.getLogger(__name__)


def market_id(symbol: str) -> str:
    """Binance's id of a unified symbol: ``BTC/USDT`` -> ``BTCUSDT``."""
    return symbol.replace("/", "")


@dataclass(frozen=True)
class StreamFaults:
    """Seeded faults of the trade streams (all off by default)."""

    disconnect_every_s: float | None = None  # market seconds between server-side disconnects of every socket
    drop_rate: float = 0.0  # share of trade messages never sent
    duplicate_rate: float = 0.0  # share sent twice
    reorder_rate: float = 0.0  # share held back and sent after the next message
    seed: int = 0


@dataclass
class _Connection:
    ws: web.WebSocketResponse
    streams: set[str] = field(default_factory=set)
    last_pong: float = field(default_factory=time.monotonic)
    held: str | None = None  # a message held back for a reorder


def _symbol_info(symbol: str) -> dict[str, Any]:
    base, quote = symbol.split("/")
    return {
        "symbol": market_id(symbol),
        "status": "TRADING",
        "baseAsset": base,
        "baseAssetPrecision": 8,
        "quoteAsset": quote,
        "quotePrecision": 8,
        "quoteAssetPrecision": 8,
        "orderTypes": ["LIMIT", "MARKET"],
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": False,
        "filters": [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": "0.00000001",
                "maxPrice": "1000000.00",
                "tickSize": "0.00000001",
            },
            {"filterType": "LOT_SIZE", "minQty": "0.00000001", "maxQty": "90000000.0", "stepSize": "0.00000001"},
        ],
        "permissions": [],
        "permissionSets": [["SPOT"]],
    }


@contextlib.contextmanager
def serve_in_thread(server: Any, name: str) -> Iterator[None]:
    """Run ``server.start()`` .. ``server.stop()`` on an event loop in a thread of its own.

    A local exchange served this way does not compete with its client's event loop (as a remote
    one would not), and code that calls ``asyncio.run`` itself (the CLI) can still reach it.
    """
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name=name, daemon=True)
    thread.start()
    try:
        asyncio.run_coroutine_threadsafe(server.start(), loop).result(timeout=10)
        yield
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


class LoopbackExchange:
    """Serves ``trades`` (a frame with ``symbol, id, timestamp, price, amount, side``) as Binance would.

    Parameters
    ----------
    trades : every trade of the replay, any order (sorted here by time, then id).
    clock : market time; trades with ``timestamp <= clock.now_ms()`` have happened.
    faults : stream faults to inject.
    ping_interval, pong_timeout : server keepalive, wall seconds (Binance: 20 s and 60 s).
    tick : wall seconds between two pushes of newly happened trades.
    """

    def __init__(
        self,
        trades: pd.DataFrame,
        clock: ReplayClock,
        *,
        faults: StreamFaults | None = None,
        ping_interval: float = 20.0,
        pong_timeout: float = 60.0,
        tick: float = 0.02,
        extra_symbols: list[str] | tuple[str, ...] = (),
    ) -> None:
        frame = trades.sort_values(["timestamp", "id"], kind="stable", ignore_index=True)
        self.clock = clock
        self.faults = faults or StreamFaults()
        self.ping_interval = ping_interval
        self.pong_timeout = pong_timeout
        self.tick = tick
        self.symbols = sorted({*frame["symbol"].astype(str).unique(), *extra_symbols})
        self._by_id = {market_id(s): s for s in self.symbols}
        codes = pd.Categorical(frame["symbol"].astype(str), categories=self.symbols)
        self._sym = codes.codes.astype(np.int64)
        self._id = frame["id"].to_numpy(np.int64)
        self._ts = frame["timestamp"].to_numpy(np.int64)
        self._price = frame["price"].to_numpy(float)
        self._amount = frame["amount"].to_numpy(float)
        self._buy = (frame["side"].astype(str) == "buy").to_numpy()
        self._per_symbol = {s: np.flatnonzero(self._sym == k) for k, s in enumerate(self.symbols)}
        self._stream_names = [f"{market_id(s).lower()}@trade" for s in self.symbols]
        #: stream kind -> builder of the messages of the trades at the given positions; add kinds here
        self.stream_kinds: dict[str, Callable[[np.ndarray], list[tuple[str, str]]]] = {"trade": self._trade_messages}
        self._rng = np.random.default_rng(self.faults.seed)
        self._connections: list[_Connection] = []
        self._cursor = int(np.searchsorted(self._ts, clock.now_ms(), side="right"))
        self._runner: web.AppRunner | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self.port: int | None = None
        # what happened, for tests and benchmarks
        self.sent = 0
        self.dropped = 0
        self.duplicated = 0
        self.reordered = 0
        self.disconnects = 0
        self.subscribe_requests = 0
        self.pongs_received = 0
        self.pings_received = 0
        self.rest_requests: dict[str, int] = {}

    # ----------------------------------------------------------------- set-up
    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("LoopbackExchange is not started")
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        # "/stream" in the path is how ccxt tells a spot socket from a futures one (binance.is_spot_url)
        return f"ws://127.0.0.1:{self.port}/stream/ws"

    def ccxt_config(self, **extra: Any) -> dict[str, Any]:
        """Constructor config for ``ccxt.pro.binance`` (or ``ccxt.async_support.binance``) pointing here."""
        config: dict[str, Any] = {
            "urls": {"api": {"public": self.url + "/api/v3", "ws": {"spot": self.ws_url, "margin": self.ws_url}}},
            "options": {"fetchMarkets": {"types": ["spot"]}, "fetchCurrencies": False, "fetchMargins": False},
            "enableRateLimit": True,
            "rateLimit": 1,
            "timeout": 5_000,
        }
        config.update(extra)
        return config

    async def start(self) -> LoopbackExchange:
        app = web.Application()
        app.router.add_get("/api/v3/exchangeInfo", self._exchange_info)
        app.router.add_get("/api/v3/aggTrades", self._agg_trades)
        app.router.add_get("/api/v3/trades", self._recent_trades)
        app.router.add_get("/api/v3/time", self._time)
        app.router.add_get("/api/v3/ping", self._ping)
        app.router.add_get("/stream/ws", self._socket)
        app.router.add_get("/stream/ws/{n}", self._socket)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]
        self._tasks = [asyncio.create_task(self._pump(), name="loopback-pump")]
        if self.ping_interval:
            self._tasks.append(asyncio.create_task(self._keepalive(), name="loopback-ping"))
        if self.faults.disconnect_every_s:
            self._tasks.append(asyncio.create_task(self._disconnector(), name="loopback-disconnect"))
        return self

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        for conn in list(self._connections):
            with contextlib.suppress(Exception):
                await conn.ws.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> LoopbackExchange:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @contextlib.contextmanager
    def running_in_thread(self) -> Iterator[LoopbackExchange]:
        """Serve from a thread of its own (its event loop does not compete with the client's)."""
        with serve_in_thread(self, "loopback-exchange"):
            yield self

    # -------------------------------------------------------------- injection
    async def disconnect_all(self, code: int = 1001) -> int:
        """Close every socket from the server side now (what a restart or a load balancer does)."""
        conns, self._connections = list(self._connections), []
        for conn in conns:
            with contextlib.suppress(Exception):
                await conn.ws.close(code=code, message=b"server restart")
        self.disconnects += 1
        return len(conns)

    @property
    def connections(self) -> int:
        return len(self._connections)

    def subscriptions(self) -> list[str]:
        return sorted({s for c in self._connections for s in c.streams})

    # ----------------------------------------------------------------- streams
    def _trade_messages(self, positions: np.ndarray) -> list[tuple[str, str]]:
        """(stream name, JSON payload) per trade: the raw ``trade`` event."""
        now = self.clock.now_ms()
        out = []
        for i in positions.tolist():
            sym = self._stream_names[self._sym[i]]
            payload = (
                f'{{"e":"trade","E":{now},"s":"{market_id(self.symbols[self._sym[i]])}","t":{self._id[i]},'
                f'"p":"{self._price[i]:.8f}","q":"{self._amount[i]:.8f}","b":0,"a":0,"T":{self._ts[i]},'
                f'"m":{"false" if self._buy[i] else "true"},"M":true}}'
            )
            out.append((sym, payload))
        return out

    async def _pump(self) -> None:
        """Push every trade whose time has come, tick by tick, with the configured faults."""
        while True:
            await asyncio.sleep(self.tick)
            end = int(np.searchsorted(self._ts, self.clock.now_ms(), side="right"))
            if end <= self._cursor:
                continue
            positions = np.arange(self._cursor, end)
            self._cursor = end
            if not self._connections:
                continue
            messages = self.stream_kinds["trade"](positions)
            for conn in list(self._connections):
                await self._send_all(conn, [m for m in messages if m[0] in conn.streams])

    async def _send_all(self, conn: _Connection, messages: list[tuple[str, str]]) -> None:
        f = self.faults
        try:
            for _, payload in messages:
                # one draw per message: [0, drop) drop, [drop, +reorder) hold back, [.., +duplicate) send twice
                roll = self._rng.random() if (f.drop_rate or f.duplicate_rate or f.reorder_rate) else 1.0
                held_back = f.drop_rate + f.reorder_rate
                if roll < f.drop_rate:
                    self.dropped += 1
                    continue
                if roll < held_back and conn.held is None:
                    conn.held = payload
                    self.reordered += 1
                    continue
                await conn.ws.send_str(payload)
                self.sent += 1
                if conn.held is not None:
                    await conn.ws.send_str(conn.held)
                    conn.held = None
                    self.sent += 1
                if held_back <= roll < held_back + f.duplicate_rate:
                    await conn.ws.send_str(payload)
                    self.duplicated += 1
        except (ConnectionResetError, RuntimeError):  # the client went away mid-batch
            self._forget(conn)

    def _forget(self, conn: _Connection) -> None:
        if conn in self._connections:
            self._connections.remove(conn)

    async def _keepalive(self) -> None:
        while True:
            await asyncio.sleep(self.ping_interval)
            now = time.monotonic()
            for conn in list(self._connections):
                if now - conn.last_pong > self.pong_timeout:
                    log.info("loopback: no pong for %.0f s, closing a socket", now - conn.last_pong)
                    self._forget(conn)
                    with contextlib.suppress(Exception):
                        await conn.ws.close(code=1008, message=b"pong timeout")
                    continue
                with contextlib.suppress(Exception):
                    await conn.ws.ping(b"keepalive")

    async def _disconnector(self) -> None:
        every_ms = int(1000 * float(self.faults.disconnect_every_s or 0))
        next_at = self.clock.now_ms() + every_ms
        while True:
            await asyncio.sleep(self.clock.wall_delay(next_at))
            next_at += every_ms
            await self.disconnect_all()

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=False, compress=False, max_msg_size=1 << 20)
        await ws.prepare(request)
        conn = _Connection(ws)
        self._connections.append(conn)
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    await self._request(conn, msg.data)
                elif msg.type == WSMsgType.PING:
                    self.pings_received += 1
                    await ws.pong(msg.data)
                elif msg.type == WSMsgType.PONG:
                    self.pongs_received += 1
                    conn.last_pong = time.monotonic()
                elif msg.type in (WSMsgType.CLOSE, WSMsgType.ERROR):
                    break
        finally:
            self._forget(conn)
        return ws

    async def _request(self, conn: _Connection, text: str) -> None:
        try:
            req = json.loads(text)
            method, params, rid = req["method"], req.get("params", []), req["id"]
        except (ValueError, KeyError, TypeError):
            await conn.ws.send_str(json.dumps({"error": {"code": 2, "msg": "Invalid request"}, "id": None}))
            return
        if method == "SUBSCRIBE":
            self.subscribe_requests += 1
            known = set(self._stream_names)
            bad = [
                p
                for p in params
                if p.split("@")[-1] not in self.stream_kinds or (p.endswith("@trade") and p not in known)
            ]
            if bad:
                await conn.ws.send_str(json.dumps({"error": {"code": 2, "msg": f"Invalid stream {bad[0]}"}, "id": rid}))
                return
            conn.streams.update(params)
            await conn.ws.send_str(json.dumps({"result": None, "id": rid}))
        elif method == "UNSUBSCRIBE":
            conn.streams.difference_update(params)
            await conn.ws.send_str(json.dumps({"result": None, "id": rid}))
        elif method == "LIST_SUBSCRIPTIONS":
            await conn.ws.send_str(json.dumps({"result": sorted(conn.streams), "id": rid}))
        else:
            await conn.ws.send_str(json.dumps({"error": {"code": 1, "msg": f"Unknown method {method}"}, "id": rid}))

    # --------------------------------------------------------------------- REST
    def _count(self, request: web.Request) -> None:
        self.rest_requests[request.path] = self.rest_requests.get(request.path, 0) + 1

    async def _ping(self, request: web.Request) -> web.Response:
        self._count(request)
        return web.json_response({})

    async def _time(self, request: web.Request) -> web.Response:
        self._count(request)
        return web.json_response({"serverTime": self.clock.now_ms()})

    async def _exchange_info(self, request: web.Request) -> web.Response:
        self._count(request)
        return web.json_response(
            {
                "timezone": "UTC",
                "serverTime": self.clock.now_ms(),
                "rateLimits": [
                    {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000}
                ],
                "exchangeFilters": [],
                "symbols": [_symbol_info(s) for s in self.symbols],
            }
        )

    def _happened(self, request: web.Request) -> tuple[str, np.ndarray] | web.Response:
        symbol = self._by_id.get(request.query.get("symbol", ""))
        if symbol is None:
            return web.json_response({"code": -1121, "msg": "Invalid symbol."}, status=400)
        rows = self._per_symbol.get(symbol, np.zeros(0, dtype=np.int64))
        return symbol, rows[: np.searchsorted(self._ts[rows], self.clock.now_ms(), side="right")]

    def _aggregates(self, rows: np.ndarray, limit: int) -> list[dict[str, Any]]:
        """Binance aggregates of ``rows`` (positions in time order), at most ``limit``: consecutive fills
        with one time, side and price form one aggregate, whose id is its first trade's id."""
        if len(rows) == 0:
            return []
        ts, buy, price = self._ts[rows], self._buy[rows], self._price[rows]
        new = np.r_[True, (ts[1:] != ts[:-1]) | (buy[1:] != buy[:-1]) | (price[1:] != price[:-1])]
        starts = np.flatnonzero(new)[:limit]
        ends = np.r_[np.flatnonzero(new)[1:], len(rows)][: len(starts)]
        volume = np.add.reduceat(self._amount[rows], np.flatnonzero(new))[: len(starts)]
        ids = self._id[rows]
        return [
            {
                "a": int(ids[s]),
                "p": f"{price[s]:.8f}",
                "q": f"{v:.8f}",
                "f": int(ids[s]),
                "l": int(ids[e - 1]),
                "T": int(ts[s]),
                "m": not bool(buy[s]),
                "M": True,
            }
            for s, e, v in zip(starts.tolist(), ends.tolist(), volume.tolist(), strict=True)
        ]

    async def _agg_trades(self, request: web.Request) -> web.Response:
        self._count(request)
        found = self._happened(request)
        if isinstance(found, web.Response):
            return found
        _, rows = found
        q = request.query
        limit = min(int(q.get("limit", 500)), 1000)
        if "fromId" in q:
            rows = rows[np.searchsorted(self._id[rows], int(q["fromId"]), side="left") :]
        elif "startTime" in q:
            lo, hi = int(q["startTime"]), int(q.get("endTime", int(q["startTime"]) + 3_600_000))
            if hi - lo > 3_600_000:
                return web.json_response(
                    {"code": -1127, "msg": "More than 1 hours between startTime and endTime."}, status=400
                )
            ts = self._ts[rows]
            rows = rows[np.searchsorted(ts, lo, side="left") : np.searchsorted(ts, hi, side="right")]
        else:
            rows = rows[-limit:]
        # an aggregate spans at most a few dozen fills: enough rows for `limit` of them
        return web.json_response(self._aggregates(rows[: limit * 64], limit))

    async def _recent_trades(self, request: web.Request) -> web.Response:
        self._count(request)
        found = self._happened(request)
        if isinstance(found, web.Response):
            return found
        _, rows = found
        rows = rows[-min(int(request.query.get("limit", 500)), 1000) :]
        return web.json_response(
            [
                {
                    "id": int(self._id[i]),
                    "price": f"{self._price[i]:.8f}",
                    "qty": f"{self._amount[i]:.8f}",
                    "quoteQty": f"{self._price[i] * self._amount[i]:.8f}",
                    "time": int(self._ts[i]),
                    "isBuyerMaker": not bool(self._buy[i]),
                    "isBestMatch": True,
                }
                for i in rows.tolist()
            ]
        )
