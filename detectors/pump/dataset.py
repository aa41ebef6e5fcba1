"""Build a labelled one-minute candle set around listed pump events, through ccxt.

``vigil pumpdump build-dataset`` reads an events list (``symbol,date,hour[,exchange]`` as in
``pump_telegram.csv`` / the Go3x3 list), fetches 1m candles from ``before`` the pump to
``after`` it for every event on the chosen exchange and writes one row per bar with the event id
and ``gt`` = 1 on the bar that contains the announced pump minute.

Fetching goes through ``feeds.exchange.ExchangeFeed`` (ccxt async, the exchange's
``[exchanges.<name>]`` config). Trades are not fetched: most exchanges only serve recent
trades, so historical pumps get candles only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.csvfiles import read_csv_table
from core.errors import DataSourceError, InputError

__all__ = ["build_pump_dataset", "label_event_candles", "read_pump_events"]

log = logging.getLogger(__name__)


def read_pump_events(path: str | Path, exchange: str | None = None) -> pd.DataFrame:
    """Events as ``pump_index, symbol, exchange, time`` (UTC); errors name file, line and column.

    ``pump_index`` is the event's row number in the file (0-based), stable across filters.
    Dates may be unpadded (``2022-9-20``, ``9:05``). With ``exchange``, only that exchange's rows.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: events file not found")
    table = read_csv_table(path, required=["symbol", "date", "hour"], text=["symbol", "date", "hour", "exchange"])
    frame = table.frame
    symbols = table.text("symbol")
    text = table.text("date") + " " + table.text("hour")
    times = pd.to_datetime(text, format="%Y-%m-%d %H:%M", errors="coerce", utc=True)
    if times.isna().any():
        first = int(np.flatnonzero(times.isna().to_numpy())[0])
        raise InputError(f"{path}:{table.line(first)}: columns 'date'/'hour': cannot parse {text.iloc[first]!r}")
    table.fail_first((symbols == "").to_numpy(), "symbol", "empty")
    out = pd.DataFrame(
        {
            "pump_index": np.arange(len(frame)),
            "symbol": symbols.str.upper().to_numpy(),
            "exchange": table.text("exchange").str.lower().to_numpy() if "exchange" in frame.columns else "",
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


async def build_pump_dataset(
    feed: Any,
    events: pd.DataFrame,
    before: pd.Timedelta,
    after: pd.Timedelta,
    *,
    quote: str = "BTC",
    progress: Callable[[], None] | None = None,
) -> tuple[pd.DataFrame, list[str]]:
    """Labelled 1m candles around every event, and one line per skipped event saying why.

    ``feed`` is an open ``feeds.exchange.ExchangeFeed`` (markets loaded, retries with backoff,
    explicit pagination of closed candles). An unlisted pair or a failed fetch skips that event
    with its reason instead of aborting the whole set.
    """
    parts, skipped = [], []
    for event in events.itertuples(index=False):
        market = f"{event.symbol}/{quote.upper()}"
        try:
            market = await feed.validate_symbol(market)
            since = int((event.time - before).value // 1_000_000)
            until = int((event.time + after).value // 1_000_000)
            candles = await feed.fetch_closed_candles(market, "1m", since, until_ms=until)
        except DataSourceError as err:  # BadSymbolError included
            skipped.append(f"event {event.pump_index}: {err}")
            candles = None
        if candles is not None and candles.empty:
            skipped.append(f"event {event.pump_index}: no candles for {market} around {event.time}")
        elif candles is not None:
            parts.append(label_event_candles(candles, event.time, int(event.pump_index), event.symbol))
        if progress is not None:
            progress()
    columns = ["date", "pump_index", "symbol", "open", "high", "low", "close", "volume", "gt"]
    data = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)
    return data, skipped
