"""Social volume over HTTP: a generic JSON source, Santiment and LunarCrush.

All three share one request function so failures read the same way:
401/403 becomes "authentication failed" naming the source and the
environment variable that holds the key (never the key), other non-2xx
statuses, timeouts and bodies that are not JSON become
:class:`~core.errors.DataSourceError` naming the source. An empty answer is
an empty series, not an error.

API shapes (checked against public documentation where available, else as
publicly described; see docs/feeds.md):

* Santiment: GraphQL ``POST https://api.santiment.net/graphql`` with header
  ``Authorization: Apikey <key>``; ``getMetric(metric: "social_volume_total")
  { timeseriesData(slug, from, to, interval) { datetime value } }``.
* LunarCrush v4: ``GET /api4/public/coins/{coin}/time-series/v2?bucket=hour
  &start=<unix s>&end=<unix s>`` with ``Authorization: Bearer <key>``;
  answer ``{"data": [{"time": <unix s>, "social_volume"|"posts_created": n}]}``.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import aiohttp
import pandas as pd

from core.errors import ConfigError, DataSourceError
from feeds.social.base import get_path, secret_from_env, symbol_parts, to_series

__all__ = ["HttpJsonSource", "LunarCrushSource", "SantimentSource"]

log = logging.getLogger(__name__)


async def request_json(
    method: str,
    url: str,
    *,
    where: str,
    headers: dict[str, str] | None = None,
    body: Any = None,
    timeout: float = 30.0,
    key_env: str | None = None,
    limited: dict[int, str] | None = None,
) -> Any:
    """One HTTP request whose JSON answer is returned; every failure is a DataSourceError.

    ``limited`` maps provider-specific statuses to what they mean (Blockchair answers an
    exhausted daily quota with 402 and a ban with 430); 429 always reads "rate limited".
    """
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session:
            async with session.request(method, url, headers=headers, json=body) as resp:
                text = await resp.text()
                status = resp.status
    except TimeoutError:
        raise DataSourceError(f"{where}: no answer within {timeout:g}s") from None
    except aiohttp.ClientError as err:
        raise DataSourceError(f"{where}: request failed: {type(err).__name__}") from None
    if status in (401, 403):
        hint = f"; check the API key in ${key_env}" if key_env else ""
        raise DataSourceError(f"{where}: authentication failed (HTTP {status}){hint}")
    if status == 429:
        raise DataSourceError(f"{where}: rate limited (HTTP 429)")
    if limited and status in limited:
        raise DataSourceError(f"{where}: {limited[status]} (HTTP {status})")
    if not 200 <= status < 300:
        raise DataSourceError(f"{where}: HTTP {status}: {text[:120]!r}")
    if not text.strip():
        return None
    try:
        return json.loads(text)
    except ValueError:
        raise DataSourceError(f"{where}: answer is not JSON: {text[:80]!r}") from None


def _window_fields(start_ms: int, end_ms: int) -> dict[str, Any]:
    def iso(ms: int) -> str:
        return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    return {
        "start_ms": start_ms,
        "end_ms": end_ms,
        "start_s": start_ms // 1000,
        "end_s": end_ms // 1000,
        "start_iso": iso(start_ms),
        "end_iso": iso(end_ms),
    }


class HttpJsonSource:
    """Any JSON API that returns a list of (time, value) records, configured in TOML.

    Options: ``url_template`` (fields ``{symbol}``, ``{base}``, ``{base_lower}``,
    ``{quote}``, ``{symbol_file}``, ``{start_ms}``, ``{end_ms}``, ``{start_s}``,
    ``{end_s}``, ``{start_iso}``, ``{end_iso}``), ``records_path`` (dotted path
    to the list, default root), ``time_field``, ``value_field`` (dotted, per
    record), ``time_unit`` (``ms``, ``s`` or ``iso``), ``api_key_env`` (optional),
    ``auth_header`` (default ``Authorization``), ``auth_prefix`` (default
    ``"Bearer "``), ``timeout`` (seconds).
    """

    def __init__(self, name: str, metric: str, options: dict[str, Any]) -> None:
        for key in ("url_template", "time_field", "value_field"):
            if key not in options:
                raise ConfigError(f"social source {name!r}: options.{key} is required")
        unit = options.get("time_unit", "s")
        if unit not in ("ms", "s", "iso"):
            raise ConfigError(f"social source {name!r}: options.time_unit must be ms, s or iso, got {unit!r}")
        self.name = name
        self.metric = metric
        self.url_template = str(options["url_template"])
        self.records_path = str(options.get("records_path", ""))
        self.time_field = str(options["time_field"])
        self.value_field = str(options["value_field"])
        self.time_unit = unit
        self.key_env = options.get("api_key_env")
        self.auth_header = str(options.get("auth_header", "Authorization"))
        self.auth_prefix = str(options.get("auth_prefix", "Bearer "))
        self.timeout = float(options.get("timeout", 30.0))

    async def fetch(self, symbol: str, start_ms: int, end_ms: int) -> pd.Series:
        where = f"social source {self.name!r}"
        fields = {
            k: quote(str(v), safe="") for k, v in {**symbol_parts(symbol), **_window_fields(start_ms, end_ms)}.items()
        }
        try:
            url = self.url_template.format(**fields)
        except KeyError as err:
            raise ConfigError(f"{where}: url_template has unknown field {err}") from None
        headers = {}
        key = secret_from_env(self.key_env, where=where, required=bool(self.key_env))
        if key:
            headers[self.auth_header] = self.auth_prefix + key
        answer = await request_json(
            "GET", url, where=where, headers=headers, timeout=self.timeout, key_env=self.key_env
        )
        records = get_path(answer, self.records_path, where=where) if answer is not None else []
        if records is None:
            records = []
        if not isinstance(records, list):
            raise DataSourceError(f"{where}: {self.records_path or 'the answer'} is not a list")
        times = [get_path(r, self.time_field, where=where) for r in records]
        values = [get_path(r, self.value_field, where=where) for r in records]
        return to_series(
            times, values, unit=self.time_unit, start_ms=start_ms, end_ms=end_ms, name=self.metric, where=where
        )


def _santiment_query(metric: str, slug: str, start_iso: str, end_iso: str, interval: str) -> str:
    """The query in the style of Santiment's own examples: arguments written inline.

    ``json.dumps`` quotes and escapes each value; GraphQL string literals accept JSON's escapes.
    """
    args = f"slug: {json.dumps(slug)}, from: {json.dumps(start_iso)}, to: {json.dumps(end_iso)}, "
    args += f"interval: {json.dumps(interval)}"
    return f"{{ getMetric(metric: {json.dumps(metric)}) {{ timeseriesData({args}) {{ datetime value }} }} }}"


# Santiment identifies projects by slug, not ticker; the common ones, overridable by options.slugs.
DEFAULT_SLUGS = {
    "BTC": "bitcoin",
    "ETH": "ethereum",
    "BNB": "binance-coin",
    "SOL": "solana",
    "XRP": "xrp",
    "ADA": "cardano",
    "DOGE": "dogecoin",
    "DOT": "polkadot-new",
    "LTC": "litecoin",
    "TRX": "tron",
}


class SantimentSource:
    """Santiment ``social_volume_total`` (GraphQL). Options: ``api_key_env`` (default
    ``SANTIMENT_API_KEY``), ``url``, ``slugs`` (ticker -> slug), ``interval`` (``1h``),
    ``santiment_metric`` (default ``social_volume_total``), ``timeout``."""

    def __init__(self, name: str, metric: str, options: dict[str, Any]) -> None:
        self.name = name
        self.metric = metric
        self.url = str(options.get("url", "https://api.santiment.net/graphql"))
        self.key_env = str(options.get("api_key_env", "SANTIMENT_API_KEY"))
        self.slugs = {**DEFAULT_SLUGS, **{k.upper(): v for k, v in options.get("slugs", {}).items()}}
        self.interval = str(options.get("interval", "1h"))
        self.remote_metric = str(options.get("santiment_metric", "social_volume_total"))
        self.timeout = float(options.get("timeout", 30.0))

    async def fetch(self, symbol: str, start_ms: int, end_ms: int) -> pd.Series:
        where = f"social source {self.name!r} (santiment)"
        base = symbol_parts(symbol)["base"]
        slug = self.slugs.get(base)
        if slug is None:
            raise DataSourceError(f"{where}: no Santiment slug for {base!r}; add it to options.slugs")
        key = secret_from_env(self.key_env, where=where)
        window = _window_fields(start_ms, end_ms)
        body = {
            "query": _santiment_query(self.remote_metric, slug, window["start_iso"], window["end_iso"], self.interval)
        }
        answer = await request_json(
            "POST",
            self.url,
            where=where,
            headers={"Authorization": f"Apikey {key}"},
            body=body,
            timeout=self.timeout,
            key_env=self.key_env,
        )
        if isinstance(answer, dict) and answer.get("errors"):
            messages = "; ".join(str(e.get("message", e))[:200] for e in answer["errors"] if isinstance(e, dict))
            raise DataSourceError(f"{where}: {messages or 'GraphQL error'}")
        data = get_path(answer, "data.getMetric.timeseriesData", where=where) if answer else []
        data = data or []
        return to_series(
            [d.get("datetime") for d in data],
            [d.get("value") for d in data],
            unit="iso",
            start_ms=start_ms,
            end_ms=end_ms,
            name=self.metric,
            where=where,
        )


class LunarCrushSource:
    """LunarCrush API v4 coin time series. Options: ``api_key_env`` (default
    ``LUNARCRUSH_API_KEY``), ``url`` (base, default ``https://lunarcrush.com``),
    ``bucket`` (``hour``), ``field`` (default ``social_volume``, falling back to
    ``posts_created``), ``coins`` (ticker -> LunarCrush coin id/symbol), ``timeout``."""

    def __init__(self, name: str, metric: str, options: dict[str, Any]) -> None:
        self.name = name
        self.metric = metric
        self.url = str(options.get("url", "https://lunarcrush.com")).rstrip("/")
        self.key_env = str(options.get("api_key_env", "LUNARCRUSH_API_KEY"))
        self.bucket = str(options.get("bucket", "hour"))
        self.field = options.get("field")
        self.coins = {k.upper(): str(v) for k, v in options.get("coins", {}).items()}
        self.timeout = float(options.get("timeout", 30.0))

    async def fetch(self, symbol: str, start_ms: int, end_ms: int) -> pd.Series:
        where = f"social source {self.name!r} (lunarcrush)"
        base = symbol_parts(symbol)["base"]
        coin = quote(self.coins.get(base, base.lower()), safe="")
        key = secret_from_env(self.key_env, where=where)
        url = (
            f"{self.url}/api4/public/coins/{coin}/time-series/v2"
            f"?bucket={self.bucket}&start={start_ms // 1000}&end={end_ms // 1000}"
        )
        answer = await request_json(
            "GET",
            url,
            where=where,
            headers={"Authorization": f"Bearer {key}"},
            timeout=self.timeout,
            key_env=self.key_env,
        )
        if isinstance(answer, dict) and answer.get("error"):
            raise DataSourceError(f"{where}: {str(answer['error'])[:200]}")
        data = (answer or {}).get("data") or [] if isinstance(answer, dict) else []
        if not isinstance(data, list):
            raise DataSourceError(f"{where}: 'data' is not a list")
        fields = [self.field] if self.field else ["social_volume", "posts_created"]
        field = next((f for f in fields if any(f in d for d in data)), fields[0])
        return to_series(
            [d.get("time") for d in data],
            [d.get(field) for d in data],
            unit="s",
            start_ms=start_ms,
            end_ms=end_ms,
            name=self.metric,
            where=where,
        )
