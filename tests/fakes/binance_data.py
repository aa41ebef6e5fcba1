"""Static pieces of the fake Binance: intervals, symbol records, and a candle generator for tests."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

__all__ = ["INTERVAL_MS", "make_candles", "market_id", "symbol_info"]

INTERVAL_MS = {
    "1s": 1_000,  # Binance serves one-second klines (the soak test runs on them)
    "1m": 60_000,
    "3m": 180_000,
    "5m": 300_000,
    "15m": 900_000,
    "30m": 1_800_000,
    "1h": 3_600_000,
    "2h": 7_200_000,
    "4h": 14_400_000,
    "6h": 21_600_000,
    "8h": 28_800_000,
    "12h": 43_200_000,
    "1d": 86_400_000,
}


def market_id(symbol: str) -> str:
    return symbol.replace("/", "")


def symbol_info(symbol: str) -> dict[str, Any]:
    base, quote = symbol.split("/")
    return {
        "symbol": market_id(symbol),
        "status": "TRADING",
        "baseAsset": base,
        "baseAssetPrecision": 8,
        "quoteAsset": quote,
        "quotePrecision": 8,
        "quoteAssetPrecision": 8,
        "baseCommissionPrecision": 8,
        "quoteCommissionPrecision": 8,
        "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"],
        "icebergAllowed": True,
        "ocoAllowed": True,
        "quoteOrderQtyMarketAllowed": True,
        "allowTrailingStop": True,
        "cancelReplaceAllowed": True,
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": False,
        "filters": [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": "0.00000001",
                "maxPrice": "1000000.00",
                "tickSize": "0.00000001",
            },
            {"filterType": "LOT_SIZE", "minQty": "0.00000100", "maxQty": "9000.00000000", "stepSize": "0.00000100"},
        ],
        "permissions": [],
        "permissionSets": [["SPOT"]],
        "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
        "allowedSelfTradePreventionModes": ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
    }


def make_candles(
    start: str = "2024-01-01",
    periods: int = 100,
    timeframe: str = "1h",
    *,
    seed: int = 0,
    price: float = 100.0,
) -> pd.DataFrame:
    """A plausible random-walk candle frame (for tests that just need bars to serve)."""
    rng = np.random.default_rng(seed)
    step = pd.Timedelta(milliseconds=INTERVAL_MS[timeframe])
    index = pd.date_range(pd.Timestamp(start, tz="UTC"), periods=periods, freq=step, name="time")
    close = price * np.exp(np.cumsum(rng.normal(0, 0.01, periods)))
    open_ = np.concatenate([[price], close[:-1]])
    spread = np.abs(rng.normal(0, 0.005, periods)) * close
    high = np.maximum(open_, close) + spread
    low = np.minimum(open_, close) - spread
    volume = rng.uniform(1, 100, periods)
    return pd.DataFrame({"open": open_, "high": high, "low": low, "close": close, "volume": volume}, index=index)
