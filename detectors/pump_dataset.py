"""Build a labelled one-minute candle set around listed pump events, through ccxt.

``vigil pumpdump build-dataset`` reads an events list (``symbol,date,hour[,exchange]`` as in
``pump_telegram.csv`` / the Go3x3 list), fetches 1m candles from ``before`` the pump to
``after`` it for every event on the chosen exchange and writes one row per bar with the event id
and ``gt`` = 1 on the bar that contains the announced pump minute.

``feeds.exchange.ExchangeFeed`` had not landed when this was written, so it uses
``ccxt.async_support`` directly with the same constructor-config pattern (``urls``, ``options``
from ``[exchanges.<name>] ccxt_config``). Trades are not fetched: most exchanges only serve
recent trades, so historical pumps get candles only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bot.errors import DataSourceError, InputError

__all__ = ["build_pump_dataset", "label_event_candles", "read_pump_events"]

log = logging.getLogger(__name__)
_MINUTE = 60_000


def read_pump_events(path: str | Path, exchange: str | None = None) -> pd.DataFrame:
    """Events as ``pump_index, symbol, exchange, time`` (UTC); errors name file, line and column.

    ``pump_index`` is the event's row number in the file (0-based), stable across filters.
    Dates may be unpadded (``2022-9-20``, ``9:05``). With ``exchange``, only that exchange's rows.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: events file not found")
    frame = pd.read_csv(path, dtype=str)
    frame.columns = [c.strip() for c in frame.columns]
    missing = [c for c in ("symbol", "date", "hour") if c not in frame.columns]
    if missing:
        raise InputError(f"{path}: missing column(s) {', '.join(missing)}")
    if frame.empty:
        raise InputError(f"{path}: no events")
    text = frame["date"].str.strip() + " " + frame["hour"].str.strip()
    times = pd.to_datetime(text, format="%Y-%m-%d %H:%M", errors="coerce", utc=True)
    if times.isna().any():
        first = int(np.flatnonzero(times.isna().to_numpy())[0])
        raise InputError(f"{path}: line {first + 2}, columns date/hour: cannot parse {text.iloc[first]!r}")
    bad = frame["symbol"].isna() | (frame["symbol"].str.strip() == "")
    if bad.any():
        raise InputError(f"{path}: line {int(np.flatnonzero(bad.to_numpy())[0]) + 2}, column symbol: empty")
    out = pd.DataFrame(
        {
            "pump_index": np.arange(len(frame)),
            "symbol": frame["symbol"].str.strip().str.upper(),
            "exchange": frame["exchange"].str.strip().str.lower() if "exchange" in frame.columns else "",
            "time": times,
        }
    )
    if exchange is not None and "exchange" in frame.columns:
        out = out[out["exchange"] == exchange.lower()]
    return out.reset_index(drop=True)


def label_event_candles(candles: pd.DataFrame, pump_time: pd.Timestamp, pump_index: int, symbol: str) -> pd.DataFrame:
    """One event's candle rows with ``date, pump_index, symbol, open..volume, gt`` (gt=1 on the pump bar)."""
    index = pd.DatetimeIndex(candles.index)
    pump_bar = pump_time.floor("1min")
    out = candles[["open", "high", "low", "close", "volume"]].copy()
    out.insert(0, "symbol", symbol)
    out.insert(0, "pump_index", pump_index)
    out.insert(0, "date", index.strftime("%Y-%m-%d %H:%M:%S"))
    out["gt"] = (index == pump_bar).astype(np.int64)
    return out.reset_index(drop=True)


async def _fetch_1m(exchange: Any, market: str, since_ms: int, until_ms: int, page: int) -> pd.DataFrame:
    """Closed 1m candles in [since_ms, until_ms), paginated explicitly."""
    rows: list[list[float]] = []
    cursor = since_ms
    while cursor < until_ms:
        batch = await exchange.fetch_ohlcv(market, "1m", since=cursor, limit=page, params={"endTime": until_ms - 1})
        batch = [r for r in batch if since_ms <= r[0] < until_ms]
        if not batch:
            break
        rows.extend(batch)
        cursor = int(batch[-1][0]) + _MINUTE
    frame = pd.DataFrame(rows, columns=["timestamp", "open", "high", "low", "close", "volume"])
    frame = frame.drop_duplicates("timestamp").sort_values("timestamp")
    frame.index = pd.to_datetime(frame.pop("timestamp"), unit="ms", utc=True)
    return frame.astype(float)


async def build_pump_dataset(
    exchange_id: str,
    ccxt_config: dict[str, Any],
    events: pd.DataFrame,
    before: pd.Timedelta,
    after: pd.Timedelta,
    *,
    quote: str = "BTC",
    page: int = 1000,
    progress: Callable[[], None] | None = None,
) -> tuple[pd.DataFrame, list[str]]:
    """Labelled 1m candles around every event, and one line per skipped event saying why."""
    import ccxt.async_support as ccxt_async

    if not hasattr(ccxt_async, exchange_id):
        raise InputError(f"--exchange: ccxt has no exchange {exchange_id!r}")
    exchange = getattr(ccxt_async, exchange_id)({"enableRateLimit": True, **ccxt_config})
    parts, skipped = [], []
    try:
        try:
            await exchange.load_markets()
        except ccxt_async.BaseError as err:
            raise DataSourceError(f"{exchange_id}: cannot load markets ({type(err).__name__}: {err})") from None
        for event in events.itertuples(index=False):
            market = f"{event.symbol}/{quote.upper()}"
            if market not in exchange.markets:
                skipped.append(f"event {event.pump_index}: {exchange_id} does not list {market}")
            else:
                since = int((event.time - before).value // 1_000_000)
                until = int((event.time + after).value // 1_000_000)
                try:
                    candles = await _fetch_1m(exchange, market, since, until, page)
                except ccxt_async.BaseError as err:
                    skipped.append(f"event {event.pump_index}: {market}: {type(err).__name__}: {err}")
                    candles = None
                if candles is not None and candles.empty:
                    skipped.append(f"event {event.pump_index}: no candles for {market} around {event.time}")
                elif candles is not None:
                    parts.append(label_event_candles(candles, event.time, int(event.pump_index), event.symbol))
            if progress is not None:
                progress()
    finally:
        await exchange.close()
    columns = ["date", "pump_index", "symbol", "open", "high", "low", "close", "volume", "gt"]
    data = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)
    return data, skipped
