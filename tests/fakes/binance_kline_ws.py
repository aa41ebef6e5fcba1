"""A fake of Binance's spot market-stream WebSocket for kline streams, on 127.0.0.1.

It speaks what ccxt.pro's ``binance.watch_ohlcv_for_symbols`` speaks: the client connects to
``urls.api.ws.spot`` + ``/<n>`` ("/stream" in the path tells ccxt it is a spot socket),
sends ``{"method": "SUBSCRIBE", "params": ["btcusdt@kline_1m", ...], "id": n}`` and gets
``{"result": null, "id": n}``; then every kline event is one text message
``{"e": "kline", "E": ..., "s": "BTCUSDT", "k": {"t", "T", "s", "i", "o", "c", "h", "l", "v", "x", ...}}``
with prices and volumes as strings, as Binance sends them.

Time is driven by the test: :meth:`FakeKlineStream.close_bar` sends, for every subscribed
stream, the final message of the bar that just closed (``"x": true``) and the first message
of the next bar (``"x": false``), which is what tells a client the first one is final.
Faults: ``silent`` symbols get no messages (their bars must come from REST), and
:meth:`disconnect_all` drops every socket from the server side.

The REST side stays :class:`tests.fakes.binance.FakeBinance`; :meth:`ccxt_config` merges
the WebSocket URL into its config (issue 18's trade-stream fake was not on main yet when
this was written: kline streams live here, in a module of their own).
"""

from __future__ import annotations

import json
import time
from typing import Any

import pandas as pd
from aiohttp import WSMsgType, web

from tests.fakes.binance_data import INTERVAL_MS, market_id

__all__ = ["FakeKlineStream"]


class FakeKlineStream:
    """Kline messages for the frames it serves (indexed by UTC open time, OHLCV columns)."""

    def __init__(self, candles: dict[str, pd.DataFrame], *, timeframe: str = "1m") -> None:
        self.timeframe = timeframe
        self.step = INTERVAL_MS[timeframe]
        self.candles = {s: f.set_axis(pd.DatetimeIndex(f.index).as_unit("ms")).sort_index() for s, f in candles.items()}
        self._by_id = {market_id(s).lower(): s for s in self.candles}
        self._sockets: dict[web.WebSocketResponse, set[str]] = {}
        self.silent: set[str] = set()
        self.sent = 0
        self.subscribe_requests: list[list[str]] = []
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    # -- server ------------------------------------------------------------------------------
    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/stream/ws"

    def ccxt_config(self, rest: dict[str, Any]) -> dict[str, Any]:
        """``rest`` (``FakeBinance.ccxt_config()``) with the spot WebSocket URL pointing here."""
        config = json.loads(json.dumps(rest))
        config["urls"]["api"]["ws"] = {"spot": self.ws_url, "margin": self.ws_url}
        return config

    async def start(self) -> FakeKlineStream:
        app = web.Application()
        app.router.add_get("/stream/ws", self._socket)
        app.router.add_get("/stream/ws/{n}", self._socket)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        await self.disconnect_all()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeKlineStream:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def subscribed(self) -> set[str]:
        """Every stream name some client subscribed to (``btcusdt@kline_1m``)."""
        return set().union(*self._sockets.values()) if self._sockets else set()

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True, compress=False, max_msg_size=1 << 22)
        await ws.prepare(request)
        self._sockets[ws] = set()
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                request_body = json.loads(msg.data)
                method, params, rid = (
                    request_body.get("method"),
                    request_body.get("params") or [],
                    request_body.get("id"),
                )
                if method == "SUBSCRIBE":
                    bad = [p for p in params if p.split("@")[0] not in self._by_id or not p.endswith(self.timeframe)]
                    if bad:
                        await ws.send_str(
                            json.dumps({"error": {"code": 2, "msg": f"Invalid stream {bad[0]}"}, "id": rid})
                        )
                        continue
                    self._sockets[ws].update(params)
                    self.subscribe_requests.append(list(params))
                    await ws.send_str(json.dumps({"result": None, "id": rid}))
                elif method == "UNSUBSCRIBE":
                    self._sockets[ws].difference_update(params)
                    await ws.send_str(json.dumps({"result": None, "id": rid}))
                else:
                    await ws.send_str(json.dumps({"error": {"code": 1, "msg": f"Unknown method {method}"}, "id": rid}))
        finally:
            self._sockets.pop(ws, None)
        return ws

    async def disconnect_all(self) -> None:
        for ws in list(self._sockets):
            await ws.close(code=1001, message=b"server restart")
        self._sockets.clear()

    # -- time --------------------------------------------------------------------------------
    def _message(self, symbol: str, open_ms: int, row: pd.Series, final: bool) -> str:
        mid = market_id(symbol)
        kline = {
            "t": open_ms,
            "T": open_ms + self.step - 1,
            "s": mid,
            "i": self.timeframe,
            "f": 1,
            "L": 2,
            "o": repr(float(row["open"])),
            "c": repr(float(row["close"])),
            "h": repr(float(row["high"])),
            "l": repr(float(row["low"])),
            "v": repr(float(row["volume"])),
            "n": 2,
            "x": final,
            "q": "0",
            "V": "0",
            "Q": "0",
            "B": "0",
        }
        return json.dumps({"e": "kline", "E": int(time.time() * 1000), "s": mid, "k": kline})

    async def close_bar(self, close_ms: int) -> int:
        """The bar ending at ``close_ms`` is final, the next one has begun: tell every subscriber."""
        bar, nxt = pd.Timestamp(close_ms - self.step, unit="ms", tz="UTC"), pd.Timestamp(close_ms, unit="ms", tz="UTC")
        sent = 0
        for ws, streams in list(self._sockets.items()):
            for stream in sorted(streams):
                symbol = self._by_id[stream.split("@")[0]]
                frame = self.candles[symbol]
                if symbol in self.silent or bar not in frame.index:
                    continue
                messages = [self._message(symbol, close_ms - self.step, frame.loc[bar], True)]
                if nxt in frame.index:  # the first update of the next bar: its open, nothing traded yet
                    first = frame.loc[nxt].copy()
                    first[["high", "low", "close"]] = first["open"]
                    first["volume"] = 0.0
                    messages.append(self._message(symbol, close_ms, first, False))
                for message in messages:
                    await ws.send_str(message)
                    sent += 1
        self.sent += sent
        return sent
