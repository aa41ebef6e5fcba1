"""On-chain metric providers: Coin Metrics Community, Blockchair, Glassnode.

Each source answers the social sources' question (:class:`feeds.social.SocialSource`):
``fetch(symbol, start_ms, end_ms)`` -> values on a UTC index, here one value per period
stamped with the period's **start** (the providers' own convention). Which metric a
source reads is its ``options``; what it is called in vigil is ``metric``.

Field names and conventions (checked 2026-11-30 in the providers' public docs):

* **Coin Metrics Community API v4** (free, no key; 10 requests per 6 s per IP; CC BY-NC):
  ``GET https://community-api.coinmetrics.io/v4/timeseries/asset-metrics?assets=btc
  &metrics=AdrActCnt&frequency=1d&start_time=...&end_time=...&page_size=...``; answer
  ``{"data": [{"asset": "btc", "time": "2024-01-01T00:00:00.000000000Z", "AdrActCnt":
  "123"}], "next_page_url": ...}`` with every number a string; daily network metrics are
  computed at 00:00 UTC for the previous 24 hours. Errors ``{"error": {"type", "message"}}``;
  401/403 for keys (Pro API: ``api_key`` query parameter), 429 for the rate limit.
  Source: docs.coinmetrics.io "API Conventions" and "Asset Metrics Overview".
* **Blockchair** (free up to 1440 requests a day and 30 a minute without a key):
  ``GET https://api.blockchair.com/{chain}/blocks?a=date,sum(transaction_count)
  &q=time(YYYY-MM-DD..YYYY-MM-DD)&s=date(asc)&limit=...[&key=...]``; answer
  ``{"data": [{"date": "2024-01-01", "sum(transaction_count)": 350000}], "context":
  {"code": 200, ...}}``. Over the limit: 402 or 429; blocked: 430, 434 or 503; a load
  shedding limit: 435. Source: Blockchair API documentation (v2, github.com/Blockchair/
  Blockchair.Support, API_DOCUMENTATION_EN.md).
* **Glassnode** (API key, ``api_key`` query parameter; free access depends on the plan):
  ``GET https://api.glassnode.com/v1/metrics/{path}?a=BTC&s=<unix s>&u=<unix s>&i=24h``;
  answer ``[{"t": 1726790400, "v": 216252}]``; timestamps are the start of the interval.
  401 for a bad key, 429 for the rate limit. Source: docs.glassnode.com "Timestamps and
  Resolutions", "API Credits & Rate Limits" and the endpoint reference.

Every failure is a :class:`~core.errors.DataSourceError` naming the source (auth failures
name the environment variable holding the key, never the key); an empty answer is an
empty series. The key never appears in an error or a log line.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode

import pandas as pd

from core.errors import ConfigError, DataSourceError
from core.timeframes import timeframe_to_ms
from feeds.social.base import empty_series, secret_from_env, symbol_parts, to_series
from feeds.social.http import request_json

__all__ = ["BlockchairSource", "CoinMetricsSource", "GlassnodeSource", "DEFAULT_CHAINS"]

log = logging.getLogger(__name__)

_MAX_PAGES = 50  # a runaway next_page_url chain must end

#: Blockchair names chains, not tickers.
DEFAULT_CHAINS = {
    "BTC": "bitcoin",
    "ETH": "ethereum",
    "LTC": "litecoin",
    "DOGE": "dogecoin",
    "BCH": "bitcoin-cash",
    "DASH": "dash",
    "BSV": "bitcoin-sv",
    "ZEC": "zcash",
    "XMR": "monero",
}


def _day(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d")


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class _Base:
    """Shared settings: name, metric, the provider's period, an asset map and a timeout."""

    kind = "base"

    def __init__(self, name: str, metric: str, options: dict[str, Any], *, period: str = "1d") -> None:
        self.name = name
        self.metric = metric
        self.period = period
        self.period_ms = timeframe_to_ms(period)
        self.timeout = float(options.get("timeout", 30.0))
        self.assets = {str(k).upper(): str(v) for k, v in dict(options.get("assets", {})).items()}

    @property
    def where(self) -> str:
        return f"on-chain source {self.name!r} ({self.kind})"

    def _asset(self, symbol: str, default: str) -> str:
        base = symbol_parts(symbol)["base"]
        return self.assets.get(base, default.format(base=base, lower=base.lower()))


class CoinMetricsSource(_Base):
    """Coin Metrics asset metrics. Options: ``coinmetrics_metric`` (required, e.g. ``AdrActCnt``,
    ``TxCnt``, ``FlowInExNtv``), ``frequency`` (``1d``), ``url`` (default the Community API),
    ``api_key_env`` (Pro API; optional), ``assets`` (ticker -> Coin Metrics asset id), ``page_size``."""

    kind = "coinmetrics"

    def __init__(self, name: str, metric: str, options: dict[str, Any], *, period: str = "1d") -> None:
        super().__init__(name, metric, options, period=period)
        if "coinmetrics_metric" not in options:
            raise ConfigError(f"on-chain source {name!r}: options.coinmetrics_metric is required (e.g. 'AdrActCnt')")
        self.remote_metric = str(options["coinmetrics_metric"])
        self.frequency = str(options.get("frequency", "1d"))
        self.url = str(options.get("url", "https://community-api.coinmetrics.io/v4")).rstrip("/")
        self.key_env = options.get("api_key_env")
        self.page_size = int(options.get("page_size", 1000))

    async def fetch(self, symbol: str, start_ms: int, end_ms: int) -> pd.Series:
        asset = self._asset(symbol, "{lower}")
        key = secret_from_env(self.key_env, where=self.where, required=bool(self.key_env))
        query = {
            "assets": asset,
            "metrics": self.remote_metric,
            "frequency": self.frequency,
            "start_time": _iso(start_ms),
            "end_time": _iso(end_ms),
            "end_inclusive": "false",
            "page_size": str(self.page_size),
        }
        if key:
            query["api_key"] = key
        url: str | None = f"{self.url}/timeseries/asset-metrics?{urlencode(query)}"
        times: list[Any] = []
        values: list[Any] = []
        for _ in range(_MAX_PAGES):
            if url is None:
                break
            answer = await request_json("GET", url, where=self.where, timeout=self.timeout, key_env=self.key_env)
            if isinstance(answer, dict) and isinstance(answer.get("error"), dict):
                err = answer["error"]
                raise DataSourceError(f"{self.where}: {err.get('type', 'error')}: {str(err.get('message'))[:200]}")
            if answer is None:
                break
            if not isinstance(answer, dict) or not isinstance(answer.get("data", []), list):
                raise DataSourceError(f"{self.where}: answer has no 'data' list")
            for row in answer.get("data", []):
                if isinstance(row, dict) and self.remote_metric in row:
                    times.append(row.get("time"))
                    values.append(row.get(self.remote_metric))
            url = answer.get("next_page_url")
        if not times:
            return empty_series(self.metric)
        return to_series(
            times, values, unit="iso", start_ms=start_ms, end_ms=end_ms, name=self.metric, where=self.where
        )


class BlockchairSource(_Base):
    """Blockchair daily aggregates of the blocks table. Options: ``aggregate`` (default
    ``sum(transaction_count)``), ``table`` (``blocks``), ``url`` (``https://api.blockchair.com``),
    ``api_key_env`` (optional), ``assets`` (ticker -> chain name; common chains built in)."""

    kind = "blockchair"
    LIMITED = {
        402: "daily request limit reached",
        430: "blocked by the provider (too many requests without a key)",
        434: "blocked by the provider (too many requests without a key)",
        435: "temporary per-second limit",
    }

    def __init__(self, name: str, metric: str, options: dict[str, Any], *, period: str = "1d") -> None:
        super().__init__(name, metric, options, period=period)
        if period != "1d":
            raise ConfigError(f"on-chain source {name!r}: Blockchair aggregates by day; period must be '1d'")
        self.aggregate = str(options.get("aggregate", "sum(transaction_count)"))
        self.table = str(options.get("table", "blocks"))
        self.url = str(options.get("url", "https://api.blockchair.com")).rstrip("/")
        self.key_env = options.get("api_key_env")
        self.assets = {**DEFAULT_CHAINS, **self.assets}

    async def fetch(self, symbol: str, start_ms: int, end_ms: int) -> pd.Series:
        base = symbol_parts(symbol)["base"]
        chain = self.assets.get(base)
        if chain is None:
            raise DataSourceError(f"{self.where}: no Blockchair chain for {base!r}; add it to options.assets")
        key = secret_from_env(self.key_env, where=self.where, required=bool(self.key_env))
        last_day = _day(end_ms - 1)
        params = {
            "a": f"date,{self.aggregate}",
            "q": f"time({_day(start_ms)}..{last_day})",
            "s": "date(asc)",
            "limit": "10000",
        }
        if key:
            params["key"] = key
        url = f"{self.url}/{quote(chain)}/{self.table}?{urlencode(params, safe='(),.')}"
        answer = await request_json(
            "GET", url, where=self.where, timeout=self.timeout, key_env=self.key_env, limited=self.LIMITED
        )
        if answer is None:
            return empty_series(self.metric)
        context = answer.get("context", {}) if isinstance(answer, dict) else {}
        if isinstance(context, dict) and context.get("error"):
            raise DataSourceError(f"{self.where}: {str(context['error'])[:200]}")
        data = answer.get("data") if isinstance(answer, dict) else None
        if data is None:
            return empty_series(self.metric)
        if not isinstance(data, list):
            raise DataSourceError(f"{self.where}: 'data' is not a list")
        rows = [r for r in data if isinstance(r, dict) and "date" in r]
        return to_series(
            [r["date"] for r in rows],
            [r.get(self.aggregate) for r in rows],
            unit="iso",
            start_ms=start_ms,
            end_ms=end_ms,
            name=self.metric,
            where=self.where,
        )


class GlassnodeSource(_Base):
    """Glassnode ``v1/metrics`` endpoints. Options: ``path`` (required, e.g. ``addresses/active_count``,
    ``transactions/count``, ``transactions/transfers_volume_exchanges_net``), ``api_key_env`` (default
    ``GLASSNODE_API_KEY``), ``interval`` (``24h``), ``url`` (``https://api.glassnode.com``), ``assets``."""

    kind = "glassnode"

    def __init__(self, name: str, metric: str, options: dict[str, Any], *, period: str = "1d") -> None:
        super().__init__(name, metric, options, period=period)
        if "path" not in options:
            raise ConfigError(f"on-chain source {name!r}: options.path is required (e.g. 'addresses/active_count')")
        self.path = str(options["path"]).strip("/")
        self.key_env = str(options.get("api_key_env", "GLASSNODE_API_KEY"))
        self.interval = str(options.get("interval", "24h"))
        self.url = str(options.get("url", "https://api.glassnode.com")).rstrip("/")

    async def fetch(self, symbol: str, start_ms: int, end_ms: int) -> pd.Series:
        asset = self._asset(symbol, "{base}")
        key = secret_from_env(self.key_env, where=self.where)
        params = {"a": asset, "s": str(start_ms // 1000), "u": str((end_ms - 1) // 1000), "i": self.interval}
        params["api_key"] = key or ""
        url = f"{self.url}/v1/metrics/{self.path}?{urlencode(params)}"
        answer = await request_json("GET", url, where=self.where, timeout=self.timeout, key_env=self.key_env)
        if answer is None:
            return empty_series(self.metric)
        if isinstance(answer, dict):
            message = answer.get("message") or answer.get("error") or answer
            raise DataSourceError(f"{self.where}: {str(message)[:200]}")
        if not isinstance(answer, list):
            raise DataSourceError(f"{self.where}: answer is not a list of points")
        points = [p for p in answer if isinstance(p, dict) and "t" in p and isinstance(p.get("v"), (int, float))]
        return to_series(
            [p["t"] for p in points],
            [p["v"] for p in points],
            unit="s",
            start_ms=start_ms,
            end_ms=end_ms,
            name=self.metric,
            where=self.where,
        )
