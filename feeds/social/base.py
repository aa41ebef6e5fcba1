"""The social-volume source interface and the bits every source shares.

A source answers one question: how many mentions did ``symbol`` get per
interval between ``start_ms`` and ``end_ms``? Everything else (files, an
HTTP JSON API, Santiment, LunarCrush) is an implementation detail behind
:class:`SocialSource`. Social data is optional context for the detectors, so
:func:`fetch_or_empty` turns any failure into a logged warning and an empty
series: a dead social API must never stop market detection.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd

from core.errors import BotError, ConfigError, DataSourceError

__all__ = [
    "SocialSource",
    "empty_series",
    "fetch_or_empty",
    "get_path",
    "symbol_parts",
    "to_series",
]

log = logging.getLogger(__name__)


@runtime_checkable
class SocialSource(Protocol):
    """A time series of mentions per symbol."""

    name: str
    metric: str

    async def fetch(self, symbol: str, start_ms: int, end_ms: int) -> pd.Series:
        """Samples with ``start_ms <= t < end_ms`` on a UTC index, float values, sorted."""
        ...


def empty_series(name: str = "social_volume") -> pd.Series:
    return pd.Series([], index=pd.DatetimeIndex([], tz="UTC", name="time"), dtype="float64", name=name)


def symbol_parts(symbol: str) -> dict[str, str]:
    """Template fields for a market symbol: ``BTC/USDT`` -> symbol, file-safe symbol, base, quote."""
    base, _, quote = symbol.upper().partition("/")
    return {
        "symbol": symbol.upper(),
        "symbol_file": symbol.upper().replace("/", "_"),
        "base": base,
        "base_lower": base.lower(),
        "quote": quote,
    }


def to_series(times: Any, values: Any, *, unit: str, start_ms: int, end_ms: int, name: str, where: str) -> pd.Series:
    """Build the sorted, de-duplicated, windowed float series a source returns.

    ``unit`` is ``"ms"``, ``"s"`` or ``"iso"``. ``where`` names the source in errors.
    """
    times = list(times)
    if not times:
        return empty_series(name)
    try:
        if unit == "iso":
            index = pd.DatetimeIndex(pd.to_datetime(times, utc=True, format="ISO8601"))
        else:
            index = pd.DatetimeIndex(pd.to_datetime(np.asarray(times, dtype="float64"), unit=unit, utc=True))
    except (ValueError, TypeError) as err:
        raise DataSourceError(f"{where}: unreadable time value ({err})") from None
    vals = pd.to_numeric(pd.Series(list(values)), errors="coerce").to_numpy(dtype="float64")
    series = pd.Series(vals, index=index.as_unit("ms").rename("time"), name=name)
    series = series[~series.index.duplicated(keep="last")].sort_index()
    ts = series.index.asi8
    return series[(ts >= start_ms) & (ts < end_ms)]


def get_path(obj: Any, path: str, *, where: str) -> Any:
    """Follow a dotted path (``data.getMetric.timeseriesData``; digits index lists)."""
    if not path:
        return obj
    cur = obj
    for part in path.split("."):
        if isinstance(cur, Mapping) and part in cur:
            cur = cur[part]
        elif isinstance(cur, list) and part.isdigit() and int(part) < len(cur):
            cur = cur[int(part)]
        else:
            raise DataSourceError(f"{where}: answer has no {path!r} (stopped at {part!r})")
    return cur


def secret_from_env(var: str | None, *, where: str, required: bool = True) -> str | None:
    """An API key read from the environment; the error names the variable, never a value."""
    if not var:
        if required:
            raise ConfigError(f"{where}: options.api_key_env is required")
        return None
    value = os.environ.get(var)
    if not value and required:
        raise DataSourceError(f"{where}: environment variable {var} (API key) is not set")
    return value or None


async def fetch_or_empty(source: SocialSource, symbol: str, start_ms: int, end_ms: int) -> pd.Series:
    """``source.fetch`` that logs failures and returns an empty series instead of raising."""
    try:
        return await source.fetch(symbol, start_ms, end_ms)
    except BotError as err:
        log.warning("social source %s: %s: %s", source.name, symbol, err)
    except Exception:  # a plug-in source's bug must not stop market detection either
        log.exception("social source %s failed for %s", source.name, symbol)
    return empty_series(source.metric)


__all__ += ["secret_from_env"]
