"""Local fakes of social-volume APIs: Santiment GraphQL, LunarCrush v4 and a generic JSON API.

One aiohttp server on 127.0.0.1 answers all three, with their real request
and answer shapes and their auth checks (Santiment ``Authorization: Apikey
<key>``, LunarCrush and the generic API ``Authorization: Bearer <key>``; a
wrong key gets 401 with the services' style of error body). ``series`` maps
a base ticker (``"BTC"``) to a float series on a UTC index; ``empty=True``
answers every query with no points.
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from typing import Any

import pandas as pd
from aiohttp import web

__all__ = ["FakeSocial"]

SLUG_TO_BASE = {"bitcoin": "BTC", "ethereum": "ETH", "xrp": "XRP"}


class FakeSocial:
    def __init__(self, series: dict[str, pd.Series], *, key: str = "sekrit-key") -> None:
        self.series = series
        self.key = key
        self.empty = False
        self.delay = 0.0  # seconds every answer waits (client timeouts)
        self.status: int | None = None  # answer every request with this status (server errors)
        self.requests: Counter[str] = Counter()
        self.last_query: dict[str, Any] = {}
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> FakeSocial:
        app = web.Application(middlewares=[self._middleware])
        app.router.add_post("/graphql", self._santiment)
        app.router.add_get("/api4/public/coins/{coin}/time-series/v2", self._lunarcrush)
        app.router.add_get("/generic/{base}", self._generic)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.status is not None:
            return web.Response(status=self.status, text="<html>Internal Server Error</html>", content_type="text/html")
        return await handler(request)

    def _window(self, base: str, start_ms: int, end_ms: int) -> pd.Series:
        s = self.series.get(base.upper())
        if s is None or self.empty:
            return pd.Series([], dtype="float64", index=pd.DatetimeIndex([], tz="UTC"))
        ts = s.index.as_unit("ms").asi8
        return s[(ts >= start_ms) & (ts <= end_ms)]

    async def _santiment(self, request: web.Request) -> web.Response:
        self.requests["santiment"] += 1
        if request.headers.get("Authorization") != f"Apikey {self.key}":
            return web.json_response({"errors": {"details": "Invalid API key"}}, status=401)
        body = await request.json()
        query = body.get("query", "")
        metric = re.search(r'getMetric\(metric:\s*"([^"]+)"\)', query)
        args = dict(re.findall(r'(slug|from|to|interval):\s*"([^"]*)"', query))
        if metric is None or "timeseriesData" not in query or len(args) != 4:
            return web.json_response({"errors": [{"message": "Cannot parse query"}], "data": None}, status=400)
        if metric.group(1) != "social_volume_total":
            return web.json_response({"errors": [{"message": f"metric {metric.group(1)} not supported"}]})
        v = self.last_query = args
        base = SLUG_TO_BASE.get(v["slug"])
        if base is None:
            return web.json_response(
                {"data": {"getMetric": None}, "errors": [{"message": f"Project with slug {v['slug']} not found"}]}
            )
        start = int(pd.Timestamp(v["from"]).value // 1_000_000)
        end = int(pd.Timestamp(v["to"]).value // 1_000_000)
        s = self._window(base, start, end)
        data = [{"datetime": t.strftime("%Y-%m-%dT%H:%M:%SZ"), "value": float(x)} for t, x in s.items()]
        return web.json_response({"data": {"getMetric": {"timeseriesData": data}}})

    async def _lunarcrush(self, request: web.Request) -> web.Response:
        self.requests["lunarcrush"] += 1
        if request.headers.get("Authorization") != f"Bearer {self.key}":
            return web.json_response({"error": "Unauthorized. Invalid API key."}, status=401)
        q = request.query
        self.last_query = dict(q)
        s = self._window(request.match_info["coin"], int(q["start"]) * 1000, int(q["end"]) * 1000)
        data = [
            {"time": int(t.value // 1_000_000_000), "posts_created": float(x), "contributors_active": 3, "close": 1.0}
            for t, x in s.items()
        ]
        return web.json_response(
            {"config": {"coin": request.match_info["coin"], "bucket": q.get("bucket")}, "data": data}
        )

    async def _generic(self, request: web.Request) -> web.Response:
        self.requests["generic"] += 1
        if request.headers.get("X-Api-Key") != self.key:
            return web.json_response({"message": "forbidden"}, status=403)
        q = request.query
        s = self._window(request.match_info["base"], int(q["from"]), int(q["to"]))
        points = [{"t": int(t.value // 1_000_000), "stats": {"mentions": float(x)}} for t, x in s.items()]
        return web.json_response({"result": {"points": points}})
