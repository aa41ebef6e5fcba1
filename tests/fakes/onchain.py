"""Local fakes of on-chain APIs: Coin Metrics v4, Blockchair and Glassnode, with their real shapes.

One aiohttp server on 127.0.0.1 answers all three:

* ``GET /v4/timeseries/asset-metrics`` (Coin Metrics): ``assets``, ``metrics``, ``frequency``,
  ``start_time``/``end_time`` (ISO), ``end_inclusive``, ``page_size``; numbers as strings,
  ``next_page_url`` paging; an unknown metric is 400 with ``{"error": {"type", "message"}}``;
  when ``cm_key`` is set, the Pro API rule applies: ``api_key`` must match, else 401.
* ``GET /{chain}/blocks?a=date,sum(transaction_count)&q=time(a..b)`` (Blockchair): rows keyed by
  ``date`` and the aggregate expression, with a ``context`` block; ``key`` checked when set.
* ``GET /v1/metrics/{path}`` (Glassnode): ``a``, ``s``, ``u`` (unix seconds), ``i``; list of
  ``{"t", "v"}``; ``api_key`` must match, else 401 with a plain-text body.

``series[(asset, metric)]`` holds daily values (UTC midnight index). Injection: ``status`` answers
every request with that status (429 rate limit, 402/430 Blockchair limits, 500), ``empty`` answers
with no points. ``requests`` counts requests per provider; ``last_query`` keeps the last query.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any
from urllib.parse import urlencode

import pandas as pd
from aiohttp import web

__all__ = ["FakeOnchain"]

_CHAIN_TO_ASSET = {"bitcoin": "BTC", "ethereum": "ETH", "litecoin": "LTC"}


class FakeOnchain:
    def __init__(
        self,
        series: dict[tuple[str, str], pd.Series],
        *,
        glassnode_key: str = "gn-key",
        cm_key: str | None = None,
        blockchair_key: str | None = None,
    ) -> None:
        self.series = series
        self.glassnode_key = glassnode_key
        self.cm_key = cm_key
        self.blockchair_key = blockchair_key
        self.status: int | None = None
        self.empty = False
        self.requests: Counter[str] = Counter()
        self.last_query: dict[str, str] = {}
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> FakeOnchain:
        app = web.Application(middlewares=[self._middleware])
        app.router.add_get("/v4/timeseries/asset-metrics", self._coinmetrics)
        app.router.add_get("/v1/metrics/{path:.+}", self._glassnode)
        app.router.add_get("/{chain}/blocks", self._blockchair)
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
        self.last_query = dict(request.query)
        if self.status is not None:
            body = {"error": {"type": "too_many_requests", "message": "Requests rate limit exceeded."}}
            return web.json_response(body, status=self.status)
        return await handler(request)

    def _window(
        self, asset: str, metric: str, start: pd.Timestamp, end: pd.Timestamp, *, end_inclusive: bool
    ) -> pd.Series:
        s = self.series.get((asset.upper(), metric))
        if s is None or self.empty:
            return pd.Series([], dtype="float64", index=pd.DatetimeIndex([], tz="UTC"))
        keep = (s.index >= start) & ((s.index <= end) if end_inclusive else (s.index < end))
        return s[keep]

    async def _coinmetrics(self, request: web.Request) -> web.Response:
        self.requests["coinmetrics"] += 1
        q = request.query
        if self.cm_key is not None and q.get("api_key") != self.cm_key:
            return web.json_response(
                {"error": {"type": "unauthorized", "message": "Requested resource requires authorization."}},
                status=401,
            )
        metric = q.get("metrics", "")
        if metric not in {m for _, m in self.series} and not self.empty:
            return web.json_response(
                {
                    "error": {
                        "type": "bad_parameter",
                        "message": f"Bad parameter 'metrics'. Value '{metric}' is not supported.",
                    }
                },
                status=400,
            )
        start = pd.Timestamp(q["start_time"])
        end = pd.Timestamp(q["end_time"])
        s = self._window(q["assets"], metric, start, end, end_inclusive=q.get("end_inclusive", "true") == "true")
        page_size = int(q.get("page_size", 100))
        offset = int(q.get("next_page_token", 0))
        page = s.iloc[offset : offset + page_size]
        data = [
            {"asset": q["assets"], "time": t.strftime("%Y-%m-%dT%H:%M:%S.000000000Z"), metric: f"{v:.10g}"}
            for t, v in page.items()
        ]
        body: dict[str, Any] = {"data": data}
        if offset + page_size < len(s):
            rest = {k: v for k, v in q.items() if k != "next_page_token"}
            token = str(offset + page_size)
            body["next_page_token"] = token
            body["next_page_url"] = (
                f"{self.url}/v4/timeseries/asset-metrics?{urlencode({**rest, 'next_page_token': token})}"
            )
        return web.json_response(body)

    async def _blockchair(self, request: web.Request) -> web.Response:
        self.requests["blockchair"] += 1
        q = request.query
        if self.blockchair_key is not None and q.get("key") != self.blockchair_key:
            return web.json_response(
                {"data": None, "context": {"code": 402, "error": "API key is invalid"}}, status=402
            )
        asset = _CHAIN_TO_ASSET.get(request.match_info["chain"])
        agg = q.get("a", "")
        match = re.fullmatch(r"time\((\d{4}-\d{2}-\d{2})\.\.(\d{4}-\d{2}-\d{2})\)", q.get("q", ""))
        if asset is None or not agg.startswith("date,") or match is None:
            return web.json_response({"data": None, "context": {"code": 400, "error": "Invalid query"}}, status=400)
        expr = agg.split(",", 1)[1]
        metric = {"sum(transaction_count)": "tx_count"}.get(expr, expr)
        start, end = pd.Timestamp(match.group(1), tz="UTC"), pd.Timestamp(match.group(2), tz="UTC")
        s = self._window(asset, metric, start, end, end_inclusive=True)
        data = [{"date": t.strftime("%Y-%m-%d"), expr: int(v)} for t, v in s.items()]
        return web.json_response({"data": data, "context": {"code": 200, "rows": len(data), "state": 850000}})

    async def _glassnode(self, request: web.Request) -> web.Response:
        self.requests["glassnode"] += 1
        q = request.query
        if q.get("api_key") != self.glassnode_key:
            return web.Response(status=401, text="Unauthorized")
        path = request.match_info["path"]
        start = pd.Timestamp(int(q["s"]), unit="s", tz="UTC")
        end = pd.Timestamp(int(q["u"]), unit="s", tz="UTC")
        s = self._window(q["a"], path, start, end, end_inclusive=True)
        return web.json_response([{"t": int(t.value // 1_000_000_000), "v": float(v)} for t, v in s.items()])
